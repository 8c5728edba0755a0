// A flag's "Sender history": the sender's earlier flags and what moderators did about each,
// newest first (GET /v1/moderation/users/{id}/history), loaded when a moderator opens it.
import { api } from "./auth.js";
import { formatTime, h, sentence } from "./ui.js";

const SHOWN = 10;
export const PAST = {
  dismiss: "dismissed the flag",
  delete: "deleted the message",
  mute: "muted the sender",
  ban: "banned the sender",
  escalate: "escalated the flag",
};

/** One moderator's action as a line of the audit trail or the sender history. */
export function actionLine(actor, action, at, reason, takenFrom) {
  const over = takenFrom ? ` (taking it over from ${takenFrom})` : "";
  return `${actor} ${PAST[action] || action}${over} at ${formatTime(at)}${reason ? `: ${reason}` : ""}`;
}

/** Sender histories by flag: loaded once per flag, kept while the page is open. */
export class SenderHistories {
  constructor(redraw) {
    this.redraw = redraw;
    this.open = new Set(); // flag ids whose history is shown
    this.loaded = new Map(); // flag id -> {entries, more} | {error} | "loading"
  }

  /** The disclosure for `flag`'s sender history (its list named "Sender history"). */
  section(flag) {
    const details = h("details", { class: "history", open: this.open.has(flag.id) },
      h("summary", { "data-control": "history", text: "Sender history" }),
      this.list(flag));
    details.addEventListener("toggle", () => {
      if (details.open === this.open.has(flag.id)) return; // re-drawn, not toggled
      if (details.open) this.show(flag);
      else this.open.delete(flag.id);
    });
    return details;
  }

  show(flag) {
    this.open.add(flag.id);
    if (this.loaded.has(flag.id)) return;
    this.loaded.set(flag.id, "loading");
    this.redraw();
    const query = new URLSearchParams({ before: flag.ts, limit: String(SHOWN) });
    api("GET", `/v1/moderation/users/${flag.message.sender.id}/history?${query}`).then(
      (history) => this.loaded.set(flag.id, { entries: history.flags, more: history.has_more }),
      (error) => this.loaded.set(flag.id, { error }),
    ).finally(() => this.redraw());
  }

  list(flag) {
    const state = this.loaded.get(flag.id);
    const list = h("ol", { class: "past-flags", "aria-label": "Sender history" });
    if (!state || state === "loading") {
      list.append(h("li", { text: "Loading the sender's earlier flags…" }));
    } else if (state.error) {
      list.append(h("li", { role: "alert", text: `The sender's history could not be loaded: ${sentence(state.error)}` }));
    } else if (!state.entries.length) {
      list.append(h("li", { text: "No earlier flags for this sender." }));
    } else {
      list.append(...state.entries.map(pastFlag));
      if (state.more) list.append(h("li", { class: "help", text: `Showing the ${SHOWN} most recent.` }));
    }
    return list;
  }
}

function pastFlag(past) {
  const scores = Object.entries(past.labels).map(([label, score]) => `${label} ${Math.round(score * 100)}%`).join(", ");
  return h("li", {},
    h("p", { class: "meta", text: `${formatTime(past.ts)} · ${past.status} · ${scores || past.reason}` }),
    past.body === null
      ? h("p", { class: "help", text: "The flagged text is no longer kept." })
      : h("blockquote", { class: "evidence", text: past.body }),
    past.actions.length
      ? h("ul", { class: "trail", "aria-label": "Actions taken" },
        ...past.actions.map((a) => h("li", { text: actionLine(a.actor.name, a.action, a.at, a.reason, a.took_over_from && a.took_over_from.name) })))
      : h("p", { class: "help", text: "No action taken." }));
}
