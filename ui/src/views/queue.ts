// The queue tab: a row per upload with its phase, progress, speed and reason, and the overall
// bar. Rows are kept and updated in place; renders are batched to one per frame.
import type { AddReport } from "../bindings/AddReport";
import type { ManagerEvent } from "../bindings/ManagerEvent";
import type { Rejection } from "../bindings/Rejection";
import type { UploadRow } from "../bindings/UploadRow";
import { byId, h } from "../dom";
import { ipc } from "../ipc";
import {
  type Action,
  actionsFor,
  count,
  formatBytes,
  formatDuration,
  formatRate,
  formatSpeed,
  percent,
  QueueModel,
} from "../model";
import type { Context } from "./context";

const ACTION_LABEL: Record<Action, string> = {
  pause: "Pause",
  resume: "Resume",
  cancel: "Cancel",
  retry: "Retry",
  dismiss: "Dismiss",
};

export class QueueView {
  readonly model = new QueueModel();
  private readonly rowEls = new Map<number, HTMLLIElement>();
  private renderQueued = false;

  constructor(private readonly ctx: Context) {}

  scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private rowElement(row: UploadRow): HTMLLIElement {
    let li = this.rowEls.get(row.id);
    if (li) return li;
    li = h(
      "li",
      { class: "row", "data-id": row.id, "data-testid": "upload-row" },
      h(
        "div",
        { class: "row-head" },
        h("span", { class: "name" }),
        h("span", { class: "badge", "data-testid": "phase" }),
        h("span", { class: "badge ok", "data-testid": "verified", hidden: true, title: "The company's server checked the file's type, size and (if it scans) malware, then moved it to its final place." }, "verified"),
      ),
      h("div", { class: "key" }),
      h("progress", { max: 100, value: 0 }),
      h("div", { class: "meta" }),
      h("div", { class: "error", "data-testid": "error" }),
      h("div", { class: "actions" }),
    );
    this.rowEls.set(row.id, li);
    return li;
  }

  private updateRow(li: HTMLLIElement, row: UploadRow): void {
    const q = <T extends Element>(sel: string) => li.querySelector(sel) as T;
    li.className = `row phase-${row.phase}`;
    q<HTMLElement>(".name").textContent = row.name;
    q<HTMLElement>(".name").title = row.path;
    q<HTMLElement>("[data-testid=phase]").textContent = row.phase;
    q<HTMLElement>("[data-testid=verified]").hidden = !row.verified;
    q<HTMLElement>(".key").textContent = `→ ${row.key}`;
    const bar = q<HTMLProgressElement>("progress");
    bar.value = percent(row.sent, row.size);
    bar.setAttribute("aria-label", `${row.name}: ${bar.value}%`);
    const parts = [`${formatBytes(row.sent)} of ${formatBytes(row.size)}`];
    if (row.phase === "uploading") {
      const speed = formatSpeed(this.model.speed(row.id));
      const eta = formatDuration(this.model.eta(row.id));
      if (speed) parts.push(speed);
      if (eta) parts.push(`${eta} left`);
    }
    q<HTMLElement>(".meta").textContent = parts.join(" · ");
    q<HTMLElement>(".error").textContent = row.error ?? "";
    const actions = q<HTMLElement>(".actions");
    const wanted = actionsFor(row.phase);
    const have = [...actions.querySelectorAll("button")].map((b) => b.dataset.action);
    if (have.join() !== wanted.join()) {
      actions.replaceChildren(
        ...wanted.map((a) =>
          h("button", { "data-action": a, "aria-label": `${ACTION_LABEL[a]} ${row.name}` }, ACTION_LABEL[a]),
        ),
      );
    }
  }

  render(): void {
    const list = byId("queue");
    const rows = this.model.list();
    const seen = new Set<number>();
    rows.forEach((row, i) => {
      const li = this.rowElement(row);
      this.updateRow(li, row);
      seen.add(row.id);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    });
    for (const [id, li] of this.rowEls) {
      if (!seen.has(id)) {
        li.remove();
        this.rowEls.delete(id);
      }
    }
    byId("queue-empty").hidden = rows.length > 0;
    const o = this.model.overall();
    byId("overall").hidden = o.active === 0;
    (byId("overall-bar") as HTMLProgressElement).value = percent(o.sent, o.total);
    const eta = o.speed > 0 ? formatDuration((o.total - o.sent) / o.speed) : "";
    byId("overall-text").textContent = [
      `${o.active} unfinished`,
      `${formatBytes(o.sent)} of ${formatBytes(o.total)}`,
      formatSpeed(o.speed),
      eta && `${eta} left`,
    ]
      .filter(Boolean)
      .join(" · ");
  }

  /** Applies a change the core reports; says how a batch ended. */
  onEvent(event: ManagerEvent): void {
    this.model.apply(event);
    if (event.event === "batchFinished") {
      const { done, failed } = event;
      this.ctx.say(
        failed > 0 ? `${done} uploaded, ${failed} failed: see the reasons below.` : `${done} uploaded.`,
        failed > 0 ? "error" : "info",
      );
    }
    this.scheduleRender();
  }

  /** Shows what an add queued and what it refused, and why. */
  added(report: AddReport): void {
    for (const row of report.queued) this.model.apply({ event: "changed", row });
    this.renderRejections(report.rejected);
    const n = report.queued.length;
    this.ctx.say(
      report.rejected.length > 0
        ? `${n} queued; ${report.rejected.length} not queued: see why above the queue.`
        : `${count(n, "file")} queued.`,
      report.rejected.length > 0 ? "error" : "info",
    );
    this.scheduleRender();
  }

  private renderRejections(rejected: Rejection[]): void {
    const list = byId("rejections");
    const close = h("button", { type: "button", "aria-label": "Close the list of files not queued" }, "Close");
    close.addEventListener("click", () => list.replaceChildren());
    list.replaceChildren(
      ...rejected.map((r) =>
        h("li", { "data-testid": "rejection" }, h("b", {}, r.path.split(/[\\/]/).pop() ?? r.path), `: ${r.reason}`),
      ),
      ...(rejected.length ? [h("li", { class: "dismiss" }, close)] : []),
    );
  }

  private async onRowAction(id: number, action: Action): Promise<void> {
    const row = this.model.get(id);
    await this.ctx.attempt(`${ACTION_LABEL[action]} ${row?.name ?? ""}`.trim(), async () => {
      await ipc[action](id);
      if (action === "dismiss") {
        this.model.remove(id);
        this.scheduleRender();
      }
    });
  }

  wire(): void {
    const { attempt } = this.ctx;
    byId("pause-all").addEventListener("click", () => void attempt("Pause all", () => ipc.pauseAll()));
    byId("resume-all").addEventListener("click", () => void attempt("Resume all", () => ipc.resumeAll()));
    byId("retry-all").addEventListener("click", () => void attempt("Retry", () => ipc.retryAll()));
    byId("cancel-all").addEventListener("click", () => void attempt("Cancel all", () => ipc.cancelAll()));
    byId("clear-finished").addEventListener("click", async () => {
      const rows = await attempt("Clear", () => ipc.clearFinished());
      if (rows) {
        this.model.reset(rows);
        this.scheduleRender();
      }
    });
    const limit = byId<HTMLInputElement>("limit-rate");
    limit.addEventListener("change", async () => {
      const rate = await attempt("Limit", () => ipc.setLimitRate(limit.value));
      if (rate === undefined) return;
      limit.value = formatRate(rate);
      this.ctx.say(rate == null ? "No bandwidth limit." : `Uploads send at most ${formatRate(rate)} per second.`);
    });
    byId("queue").addEventListener("click", (e) => {
      const button = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-action]");
      const li = button?.closest<HTMLElement>("li[data-id]");
      if (button && li) void this.onRowAction(Number(li.dataset.id), button.dataset.action as Action);
    });
  }
}
