// The history tab: finished uploads with key, size, SHA-256 (and what verified them), time and
// profile; copy a key or the object URL (never signed); export as CSV or JSON.
import { save } from "@tauri-apps/plugin-dialog";
import { byId, h } from "../dom";
import { ipc } from "../ipc";
import { formatBytes } from "../model";
import type { Context } from "./context";

export class HistoryView {
  constructor(private readonly ctx: Context) {}

  async refresh(): Promise<void> {
    const rows = (await this.ctx.attempt("History", () => ipc.history())) ?? [];
    byId("history-body").replaceChildren(
      ...rows.map((e) =>
        h(
          "tr",
          { "data-testid": "history-row" },
          h("td", { title: e.name }, e.name),
          h("td", { class: "mono", title: e.key }, e.key),
          h("td", {}, formatBytes(e.size)),
          h(
            "td",
            // What proved the upload (checksum, value, who checked it) shows on hover. A file
            // sent in parts has no SHA-256: its store-verified checksum stands in.
            {
              class: "mono",
              title: [e.sha256 ? `SHA-256 ${e.sha256}` : null, e.integrity ? `verified: ${e.integrity}` : null]
                .filter((l) => l !== null)
                .join("\n"),
            },
            (e.sha256 ?? e.integrity ?? "").slice(0, 12) + "…",
          ),
          h("td", {}, e.finishedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC")),
          h("td", {}, e.profile),
          h(
            "td",
            { class: "copy" },
            h("button", { "data-copy": e.key, "aria-label": `Copy key of ${e.name}` }, "Copy key"),
            e.url ? h("button", { "data-copy": e.url, "aria-label": `Copy URL of ${e.name}` }, "Copy URL") : null,
          ),
        ),
      ),
    );
    byId("history-empty").hidden = rows.length > 0;
  }

  private async export(format: "csv" | "json"): Promise<void> {
    const path = await save({
      defaultPath: `hoist-history.${format}`,
      filters: [{ name: format.toUpperCase(), extensions: [format] }],
    });
    if (!path) return;
    const n = await this.ctx.attempt("Export", () => ipc.exportHistory(format, path));
    if (n !== undefined) this.ctx.say(`Exported ${n} upload(s) to ${path}.`);
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
    byId("export-csv").addEventListener("click", () => void this.export("csv"));
    byId("export-json").addEventListener("click", () => void this.export("json"));
    byId("history-body").addEventListener("click", (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-copy]");
      if (b?.dataset.copy) void this.copy(b.dataset.copy);
    });
  }
}
