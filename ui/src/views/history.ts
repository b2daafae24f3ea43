// The history tab: finished uploads with key, size, SHA-256 (and what verified them), time and
// profile; copy a key or the object URL (never signed); export as CSV or JSON.
import { save } from "@tauri-apps/plugin-dialog";
import type { HistoryEntry } from "../bindings/HistoryEntry";
import { byId, h } from "../dom";
import { ipc } from "../ipc";
import { count, formatBytes } from "../model";
import type { Context } from "./context";

/** A finished time in this computer's time zone; the UTC original shows on hover. */
export function localTime(utc: string): string {
  const at = new Date(utc);
  if (Number.isNaN(at.getTime())) return utc;
  return at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export class HistoryView {
  private rows: HistoryEntry[] = [];

  constructor(private readonly ctx: Context) {}

  async refresh(): Promise<void> {
    this.rows = (await this.ctx.attempt("History", () => ipc.history())) ?? [];
    this.render();
  }

  /** The rows whose name, key or profile contain what is typed in the search box. */
  private render(): void {
    const wanted = byId<HTMLInputElement>("history-search").value.trim().toLowerCase();
    const rows = wanted
      ? this.rows.filter((e) => [e.name, e.key, e.profile].some((f) => f.toLowerCase().includes(wanted)))
      : this.rows;
    byId("history-body").replaceChildren(
      ...rows.map((e) =>
        h(
          "tr",
          { "data-testid": "history-row" },
          h("td", { title: e.name }, e.name),
          h("td", { class: "mono key" }, e.key),
          h("td", {}, formatBytes(e.size)),
          h(
            "td",
            // What proved the upload (checksum, value, who checked it) shows on hover. A file
            // sent in parts has no SHA-256: its store-verified checksum stands in.
            {
              class: "mono",
              title: [
                e.sha256 ? `SHA-256 ${e.sha256}` : null,
                e.integrity ? `verified: ${e.integrity}` : null,
                e.verified ? "checked by the company's server (type, size, scan) before reaching its key" : null,
              ]
                .filter((l) => l !== null)
                .join("\n"),
            },
            (e.sha256 ?? e.integrity ?? "").slice(0, 12) + "…",
            e.verified ? h("span", { class: "badge ok", "data-testid": "history-verified" }, "verified") : null,
          ),
          h("td", { title: e.finishedAt }, localTime(e.finishedAt)),
          h("td", {}, e.profile),
          h(
            "td",
            { class: "copy" },
            h("button", { "data-copy": e.key, "aria-label": `Copy key of ${e.name}` }, "Copy key"),
            e.url
              ? h(
                  "button",
                  {
                    "data-copy": e.url,
                    "aria-label": `Copy address of ${e.name}`,
                    title: "The object's address: it opens only for people with access to the bucket",
                  },
                  "Copy address",
                )
              : null,
            h("button", { "data-share": String(e.id), "aria-label": `Copy a share link of ${e.name}` }, "Share link"),
          ),
        ),
      ),
    );
    byId("history-empty").hidden = rows.length > 0;
    byId("history-empty").textContent =
      this.rows.length > 0 ? "No finished upload matches the search." : "Finished uploads appear here.";
  }

  private async export(format: "csv" | "json"): Promise<void> {
    const path = await save({
      defaultPath: `hoist-history.${format}`,
      filters: [{ name: format.toUpperCase(), extensions: [format] }],
    });
    if (!path) return;
    const n = await this.ctx.attempt("Export", () => ipc.exportHistory(format, path));
    if (n !== undefined) this.ctx.say(`Exported ${count(n, "upload")} to ${path}.`);
  }

  /** Copies a link anyone can open until the expiry chosen in the toolbar. */
  private async share(id: number): Promise<void> {
    const select = byId<HTMLSelectElement>("share-expiry");
    const link = await this.ctx.attempt("Share link", () => ipc.shareLink(id, Number(select.value)));
    if (!link) return;
    try {
      await navigator.clipboard.writeText(link);
      this.ctx.say(`Copied a link anyone can open for ${select.selectedOptions[0]?.text ?? "a while"}.`);
    } catch {
      this.ctx.say(`Copy this link by hand: ${link}`);
    }
  }

  private async copy(text: string): Promise<void> {
    try {
      await navigator.clipboard.writeText(text);
      this.ctx.say(`Copied ${text}`);
    } catch {
      this.ctx.say(`Copy this by hand: ${text}`);
    }
  }

  wire(): void {
    byId("history-search").addEventListener("input", () => this.render());
    byId("export-csv").addEventListener("click", () => void this.export("csv"));
    byId("export-json").addEventListener("click", () => void this.export("json"));
    byId("history-body").addEventListener("click", (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-copy]");
      if (b?.dataset.copy) void this.copy(b.dataset.copy);
      const share = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-share]");
      if (share?.dataset.share) void this.share(Number(share.dataset.share));
    });
  }
}
