// The queue tab: a row per upload with its phase, progress, speed and reason, and the overall
// bar. The list is virtual: only the rows in view (and a few around) are in the page, each of
// one fixed height, so a folder of 100,000 files costs what a screenful does. Rows are kept and
// updated in place; renders are batched to one per frame.
import type { AddSummary } from "../bindings/AddSummary";
import type { ManagerEvent } from "../bindings/ManagerEvent";
import type { QueueFilter } from "../bindings/QueueFilter";
import type { Rejection } from "../bindings/Rejection";
import type { UploadRow } from "../bindings/UploadRow";
import { byId, copyText, h } from "../dom";
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
  show: "Show in folder",
  details: "Details",
};

/** Files whose rows show a thumbnail (the desktop makes them; other files never ask). */
const IMAGE_NAME = /\.(png|jpe?g|gif|webp)$/i;
const THUMBNAILS_KEPT = 500;

/** Every row's height in pixels, its margin included (style.css: `.queue .row`). */
export const ROW_HEIGHT = 76;
/** Rows rendered beyond each edge of the view, so scrolling shows no gap. */
const OVERSCAN = 6;
/** Rows fetched beyond each edge of the view, so scrolling a little needs no fetch. */
const FETCH_MARGIN = 40;
/** The window is fetched again at most this often while events say it is out of date (rows
 * in view follow their events at once; counts and order catch up at this pace). */
const REFRESH_MS = 500;

/** The view's height when the list has none yet (before layout). */
const FALLBACK_VIEW = 720;

export class QueueView {
  readonly model = new QueueModel();
  private readonly rowEls = new Map<number, HTMLLIElement>();
  private renderQueued = false;
  /** Stand in for the rows above and below the view, at their height: the scroll bar stays true. */
  private readonly above = h("li", { class: "spacer", "aria-hidden": "true" });
  private readonly below = h("li", { class: "spacer", "aria-hidden": "true" });
  private filter: QueueFilter = "all";
  /** A fetch of the window is running, or one more is wanted after it. */
  private fetching = false;
  private fetchAgain = false;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshPending = false;

  constructor(private readonly ctx: Context) {}

  /** The list's rows the view shows now (and a few around them), as [first, last). */
  private inView(): [number, number] {
    const list = byId("queue");
    // At least a window's height: a list still growing into its box is never left short.
    const view = Math.max(list.clientHeight, window.innerHeight || FALLBACK_VIEW);
    const first = Math.max(0, Math.floor(list.scrollTop / ROW_HEIGHT) - OVERSCAN);
    return [first, Math.ceil((list.scrollTop + view) / ROW_HEIGHT) + OVERSCAN];
  }

  /** Fetches the rows around the view from the core (one fetch at a time; a request made
   * meanwhile runs once it ends). */
  async refresh(): Promise<void> {
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = true;
    try {
      do {
        this.fetchAgain = false;
        const [first, last] = this.inView();
        const offset = Math.max(0, first - FETCH_MARGIN);
        const window = await this.ctx.attempt("Queue", () =>
          ipc.queueWindow({ filter: this.filter, offset, limit: last - offset + FETCH_MARGIN }),
        );
        if (window) this.model.load(window);
        this.render();
      } while (this.fetchAgain);
    } finally {
      this.fetching = false;
    }
  }

  /** Fetches the window again: events said it is out of date. At once the first time, then at
   * most every REFRESH_MS while events keep coming (a folder of 100,000 files). */
  private refreshSoon(): void {
    if (this.refreshTimer !== null) {
      this.refreshPending = true;
      return;
    }
    void this.refresh();
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (this.refreshPending) {
        this.refreshPending = false;
        this.refreshSoon();
      }
    }, REFRESH_MS);
  }

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
        h("span", { class: "badge profile", "data-testid": "profile", title: "The profile it uploads with" }),
        h("span", { class: "badge ok", "data-testid": "verified", hidden: true, title: "The company's server checked the file's type, size and (if it scans) malware, then moved it to its final place." }, "verified"),
        h("span", { class: "meta" }),
        h("span", { class: "actions" }),
      ),
      h("div", { class: "key" }),
      h("div", { class: "error", "data-testid": "error" }),
      h("progress", { max: 100, value: 0 }),
      h("img", { class: "thumb", alt: "", "data-testid": "thumbnail", hidden: true }),
    );
    this.rowEls.set(row.id, li);
    return li;
  }

  private updateRow(li: HTMLLIElement, row: UploadRow): void {
    const q = <T extends Element>(sel: string) => li.querySelector(sel) as T;
    li.className = `row phase-${row.phase}`;
    this.showThumbnail(li, row);
    q<HTMLElement>(".name").textContent = row.name;
    q<HTMLElement>(".name").title = row.path;
    q<HTMLElement>("[data-testid=phase]").textContent = row.phase;
    q<HTMLElement>("[data-testid=profile]").textContent = row.profile;
    q<HTMLElement>("[data-testid=verified]").hidden = !row.verified;
    q<HTMLElement>(".key").textContent = `→ ${keyOf(row)}`;
    q<HTMLElement>(".key").title = keyOf(row);
    q<HTMLElement>(".key").hidden = row.error !== null;
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
    q<HTMLElement>(".error").title = row.error ?? "";
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

  /** Thumbnails of image files, asked for once a row is first in view; the newest few
   * hundred are kept. */
  private readonly thumbnails = new Map<number, string | null>();

  private showThumbnail(li: HTMLLIElement, row: UploadRow): void {
    const img = li.querySelector("img.thumb") as HTMLImageElement;
    const known = IMAGE_NAME.test(row.name) ? this.thumbnails.get(row.id) : null;
    if (known === undefined) {
      this.thumbnails.set(row.id, null);
      if (this.thumbnails.size > THUMBNAILS_KEPT) {
        this.thumbnails.delete(this.thumbnails.keys().next().value as number);
      }
      ipc
        .thumbnail(row.id)
        .then((url) => {
          this.thumbnails.set(row.id, url);
          if (url) this.scheduleRender();
        })
        .catch(() => undefined); // no thumbnail is no harm: the row says everything else
    }
    if (known && img.getAttribute("src") !== known) img.src = known;
    img.hidden = !known;
    li.classList.toggle("has-thumb", Boolean(known));
  }

  render(): void {
    const list = byId("queue");
    const size = this.model.size();
    const [first, wanted] = this.inView();
    const last = Math.min(size, wanted);
    // Scrolled beyond the rows fetched: the spacers keep the scroll bar true meanwhile.
    if (!this.model.covers(first, last) && !this.fetching) void this.refresh();
    this.above.style.height = `${first * ROW_HEIGHT}px`;
    this.below.style.height = `${Math.max(0, size - last) * ROW_HEIGHT}px`;
    if (list.firstChild !== this.above) list.insertBefore(this.above, list.firstChild);
    const seen = new Set<number>();
    let at = 1;
    for (let i = first; i < last; i++) {
      const row = this.model.at(i);
      if (!row) continue;
      const li = this.rowElement(row);
      this.updateRow(li, row);
      li.setAttribute("aria-posinset", String(i + 1));
      li.setAttribute("aria-setsize", String(size));
      seen.add(row.id);
      if (list.children[at] !== li) list.insertBefore(li, list.children[at] ?? null);
      at += 1;
    }
    if (list.lastChild !== this.below) list.appendChild(this.below);
    for (const [id, li] of this.rowEls) {
      if (!seen.has(id)) {
        li.remove();
        this.rowEls.delete(id);
      }
    }
    byId("queue-empty").hidden = this.model.all() > 0;
    byId("queue-count").textContent =
      this.filter === "all" ? "" : `${size} of ${count(this.model.all(), "upload")}`;
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

  /** Applies changes the core reports (it sends them coalesced, many at once); says how a
   * batch ended. */
  onEvent(event: ManagerEvent): void {
    if (this.model.apply(event)) this.refreshSoon();
    if (event.event === "batchFinished") {
      const { done, failed } = event;
      // Files the drop refused are still news (#31: "2 uploaded." hid 2 refused files).
      const refused = document.querySelectorAll("#rejections [data-testid=rejection]").length;
      const notQueued = refused > 0 ? ` ${refused} not queued: see why above the queue.` : "";
      this.ctx.say(
        failed > 0
          ? `${done} uploaded, ${failed} failed: see the reasons below.${notQueued}`
          : `${done} uploaded.${notQueued}`,
        failed > 0 || refused > 0 ? "error" : "info",
      );
    }
    this.scheduleRender();
  }

  /** Shows what an add queued and what it refused, and why (the rows come as events). */
  added(report: AddSummary): void {
    this.renderRejections(report.rejected);
    const n = report.queued;
    this.ctx.say(
      report.rejected.length > 0
        ? `${n} queued; ${report.rejected.length} not queued: see why above the queue.`
        : `${count(n, "file")} queued.`,
      report.rejected.length > 0 ? "error" : "info",
    );
    void this.refresh();
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

  /** The whole reason of a failed upload, with what the help desk needs, in a dialog that
   * takes the focus (Escape or Close gives it back). */
  private showDetails(row: UploadRow): void {
    const dialog = byId("error-details") as HTMLDialogElement;
    byId("error-details-title").textContent = `${row.name} did not upload`;
    byId("error-details-text").textContent = row.error ?? "No reason was recorded.";
    const facts: [string, string][] = [
      ["File", row.path],
      ["Profile", row.profile],
      ["Destination", keyOf(row)],
      ["Sent", `${formatBytes(row.sent)} of ${formatBytes(row.size)}`],
    ];
    byId("error-details-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    const report = [`${row.name} did not upload: ${row.error ?? ""}`, ...facts.map(([k, v]) => `${k}: ${v}`)].join("\n");
    const copy = byId("error-details-copy");
    copy.onclick = async () => {
      this.ctx.say(
        (await copyText(report))
          ? "The details are copied: paste them into your message to the help desk."
          : "Select the text and copy it (Ctrl+C): this window cannot reach the clipboard.",
      );
    };
    byId("error-details-close").onclick = () => dialog.close();
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    byId("error-details-close").focus();
  }

  private async onRowAction(id: number, action: Action): Promise<void> {
    const row = this.model.get(id);
    if (action === "details") {
      if (row) this.showDetails(row);
      return;
    }
    await this.ctx.attempt(`${ACTION_LABEL[action]} ${row?.name ?? ""}`.trim(), async () => {
      await ipc[action](id);
      if (action === "dismiss") {
        this.model.remove(id);
        void this.refresh();
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
      await attempt("Clear", () => ipc.clearFinished());
      void this.refresh();
    });
    const limit = byId<HTMLInputElement>("limit-rate");
    limit.addEventListener("change", async () => {
      const rate = await attempt("Limit", () => ipc.setLimitRate(limit.value));
      if (rate === undefined) return;
      limit.value = formatRate(rate);
      this.ctx.say(rate == null ? "No bandwidth limit." : `Uploads send at most ${formatRate(rate)} per second.`);
    });
    byId("queue").addEventListener("scroll", () => this.scheduleRender(), { passive: true });
    const filter = byId<HTMLSelectElement>("queue-filter");
    filter.addEventListener("change", () => {
      this.filter = filter.value as QueueFilter;
      byId("queue").scrollTop = 0;
      void this.refresh();
    });
    byId("queue").addEventListener("click", (e) => {
      const button = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-action]");
      const li = button?.closest<HTMLElement>("li[data-id]");
      if (button && li) void this.onRowAction(Number(li.dataset.id), button.dataset.action as Action);
    });
  }
}

/** Where a row's file goes: its key, or what names it when the backend has yet to. */
function keyOf(row: UploadRow): string {
  return row.key || "a key the backend chooses when it signs";
}
