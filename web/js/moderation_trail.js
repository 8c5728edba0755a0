// A flag's "Audit trail": how it was raised, then who did what, when and why, oldest first
// (GET /v1/moderation/flags/{id}/trail). Loaded when a moderator asks, and again after they act.
import { api } from "./auth.js";
import { actionLine } from "./moderation_history.js";
import { formatTime, h, sentence } from "./ui.js";

/** One trail entry as a sentence. */
function entryLine(entry) {
  const who = entry.by ? entry.by.name : "The model";
  if (entry.what === "raised") {
    const how = entry.by ? "reported the message" : "flagged the message";
    return `${who} ${how} at ${formatTime(entry.at)}: ${entry.reason}`;
  }
  const from = entry.took_over_from && entry.took_over_from.name;
  if (entry.what === "moderation.take_over") return `${who} took the flag over from ${from || "its claimer"} at ${formatTime(entry.at)}`;
  const action = entry.what.replace(/^moderation\./, "");
  const line = actionLine(who, action, entry.at, entry.reason, from);
  return entry.duration_s ? `${line} (for ${Math.round(entry.duration_s / 60)} minutes)` : line;
}

/** Audit trails by flag: loaded on demand, kept while the page is open. */
export class FlagTrails {
  constructor(redraw) {
    this.redraw = redraw;
    this.loaded = new Map(); // flag id -> {entries} | {error} | "loading"
  }

  load(flagId) {
    this.loaded.set(flagId, "loading");
    this.redraw();
    api("GET", `/v1/moderation/flags/${flagId}/trail`).then(
      (trail) => this.loaded.set(flagId, { entries: trail.entries }),
      (error) => this.loaded.set(flagId, { error }),
    ).finally(() => this.redraw());
  }

  /** The flag's trail once asked for (a list named "Audit trail"), else a button asking. */
  section(flag) {
    const state = this.loaded.get(flag.id);
    if (!state) {
      return h("button", { type: "button", class: "link", "data-control": "trail", onclick: () => this.load(flag.id) }, "Show audit trail");
    }
    const list = h("ol", { class: "trail", "aria-label": "Audit trail" });
    if (state === "loading") list.append(h("li", { text: "Loading the audit trail…" }));
    else if (state.error) list.append(h("li", { role: "alert", text: `The audit trail could not be loaded: ${sentence(state.error)}` }));
    else list.append(...state.entries.map((entry) => h("li", { text: entryLine(entry) })));
    return list;
  }
}
