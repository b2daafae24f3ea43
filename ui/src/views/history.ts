// The history tab: finished uploads with key, size, SHA-256 (and what verified them), time and
// profile; copy a key or the object URL (never signed); export as CSV or JSON. It is read a
// page at a time from the queue's index (searched there too): a history of 100,000 uploads
// opens as fast as one of ten.
import { save } from "@tauri-apps/plugin-dialog";
import type { HistoryCursor } from "../bindings/HistoryCursor";
import type { HistoryEntry } from "../bindings/HistoryEntry";
import { byId, copyText, h } from "../dom";
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
  private total = 0;
  private next: HistoryCursor | null = null;
  private search = "";
  /** Answers to an older search or refresh are dropped. */
  private asked = 0;

  constructor(private readonly ctx: Context) {}

  /** The newest page for what is typed in the search box (name, key or profile). */
  async refresh(): Promise<void> {
    const search = byId<HTMLInputElement>("history-search").value.trim();
    const asked = ++this.asked;
    const page = await this.ctx.attempt("History", () => ipc.historyPage({ search: search || null, before: null, limit: null }));
    if (asked !== this.asked || !page) return;
    this.search = search;
    this.rows = page.entries;
    this.total = page.total;
    this.next = page.next;
    this.render();
  }

  /** The next page, below the rows shown. */
  private async more(): Promise<void> {
    const before = this.next;
    if (!before) return;
    const asked = ++this.asked;
    const page = await this.ctx.attempt("History", () =>
      ipc.historyPage({ search: this.search || null, before, limit: null }),
    );
    if (asked !== this.asked || !page) return;
    this.rows = this.rows.concat(page.entries);
    this.total = page.total;
    this.next = page.next;
    this.render();
  }

  private render(): void {
    const rows = this.rows;
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
            // A company backend signs uploads only: its staff are never offered a link (#31).
            e.shareable
              ? h("button", { "data-share": String(e.id), "aria-label": `Copy a share link of ${e.name}` }, "Share link")
              : null,
          ),
        ),
      ),
    );
    byId("history-empty").hidden = rows.length > 0;
    byId("history-empty").textContent = this.search
      ? "No finished upload matches the search."
      : "Finished uploads appear here.";
    byId("history-count").textContent =
      rows.length === 0 ? "" : rows.length < this.total ? `Showing ${rows.length} of ${count(this.total, "upload")}` : count(this.total, "upload");
    byId("history-more").hidden = this.next === null;
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
    if (await copyText(link)) {
      this.ctx.say(`Copied a link anyone can open for ${select.selectedOptions[0]?.text ?? "a while"}.`);
    } else {
      this.ctx.say(`Copy this link by hand: ${link}`);
    }
  }

  private async copy(text: string): Promise<void> {
    if (await copyText(text)) {
      this.ctx.say(`Copied ${text}`);
    } else {
      this.ctx.say(`Copy this by hand: ${text}`);
    }
  }

  wire(): void {
    byId("history-search").addEventListener("input", () => void this.refresh());
    byId("history-more").addEventListener("click", () => void this.more());
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
