// The moderator dashboard: the live queue of flags (new ones appear without reload, with a
// count), filters and sorting (closed flags loaded from the API), claims (who works on which
// flag, shown to every moderator live; acting on another's claim asks to take it over),
// actions with a required reason, each flag's sender history and audit trail, and Watch (a flagged room,
// live and read-only, flagged lines highlighted).
import { api, currentUser } from "./auth.js";
import { PAST, SenderHistories } from "./moderation_history.js";
import { FlagTrails } from "./moderation_trail.js";
import { WatchPanel } from "./moderation_watch.js";
import { call, ConnectionBanner, connect } from "./sockets.js";
import { formatTime, h, onPageLeave, render, sentence } from "./ui.js";

const ACTIONS = [ // [action, button, what a take-over confirms]
  ["dismiss", "Dismiss", "dismiss it"],
  ["delete", "Delete message", "delete the message"],
  ["mute", "Mute", "mute the sender"],
  ["ban", "Ban", "ban the sender"],
  ["escalate", "Escalate", "escalate it"],
];
const LIVE = new Set(["open", "escalated"]); // the statuses `subscribe` keeps up to date
const PAGE = 50; // cards drawn at a time: a queue of hundreds redrawn whole on every event stalls the page
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const severity = (flag) => Math.max(0, ...Object.values(flag.labels));
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

export function moderationPage() {
  const user = currentUser();
  if (user.role !== "moderator" && user.role !== "admin") {
    render(h("h1", { text: "Moderation" }), h("p", { role: "alert", text: "Only moderators and admins can open the moderation dashboard." }));
    return;
  }
  new Dashboard(user).start();
}

/** Emit with an ack, resolving with the whole ack (refusals included, their code is needed). */
function ask(socket, event, payload, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, payload, (timedOut, ack) => {
      if (timedOut) reject(new Error("the server did not answer in time; try again"));
      else resolve(ack || { ok: false, error: { code: "unavailable", message: "the server refused" } });
    });
  });
}

class Dashboard {
  constructor(user) {
    this.me = user;
    this.socket = connect("/moderation");
    this.flags = new Map(); // id -> Flag
    this.trails = new FlagTrails(() => this.draw());
    this.confirming = new Map(); // id -> {event, payload, holder, what}: asked to take over
    this.histories = new SenderHistories(() => this.draw());
    this.nextOffset = null; // the next page of closed flags, when there is one
    this.apiHasMore = false; // the API holds more closed flags than loaded
    this.shown = PAGE; // how many of the matching flags are drawn
  }

  start() {
    onPageLeave(() => this.socket.disconnect());
    this.count = h("span", { class: "badge", "aria-live": "polite" });
    this.banner = h("div", { class: "banner", role: "status", hidden: true });
    new ConnectionBanner(this.banner).watch(this.socket, "moderation");
    this.reason = h("input", { id: "reason", name: "reason", maxlength: "1000", required: true, "aria-describedby": "reason-help" });
    this.muteFor = h("select", { id: "mute-for" },
      h("option", { value: "900" }, "15 minutes"), h("option", { value: "3600", selected: true }, "1 hour"), h("option", { value: "86400" }, "1 day"));
    const reload = () => this.filtersChanged();
    this.status = h("select", { id: "filter-status", onchange: reload },
      h("option", { value: "open" }, "Open"), h("option", { value: "escalated" }, "Escalated"),
      h("option", { value: "dismissed" }, "Dismissed"), h("option", { value: "actioned" }, "Actioned"),
      h("option", { value: "" }, "Any status"));
    this.label = h("select", { id: "filter-label", onchange: reload }, h("option", { value: "" }, "Any label"));
    this.room = h("input", { id: "filter-room", placeholder: "room id", oninput: () => { clearTimeout(this.typing); this.typing = setTimeout(reload, 400); } });
    this.since = h("select", { id: "filter-since", onchange: reload },
      h("option", { value: "" }, "Any time"), h("option", { value: "3600" }, "Last hour"),
      h("option", { value: "86400" }, "Last day"), h("option", { value: "604800" }, "Last week"));
    this.order = h("select", { id: "sort", onchange: reload },
      h("option", { value: "newest" }, "Newest first"), h("option", { value: "severity" }, "Most severe first"));
    this.list = h("ul", { class: "flags", "aria-label": "Flags", "aria-live": "polite" },
      h("li", { class: "empty", text: "Loading flags…" })); // until the subscription answers
    this.more = h("button", { type: "button", hidden: true, onclick: () => this.showMore() }, "Load more flags");
    this.message = h("p", { class: "action-message", role: "status" });
    const isFlagged = (message) => [...this.flags.values()].some((flag) => flag.message.id === message.id);
    this.watching = new WatchPanel(this.socket, isFlagged, (text) => { this.message.textContent = text; });
    const field = (id, text, control) => h("div", { class: "field" }, h("label", { for: id, text }), control);
    render(
      h("h1", {}, "Moderation ", this.count),
      this.banner,
      h("div", { class: "card action-bar" },
        field("reason", "Reason", this.reason),
        h("p", { id: "reason-help", class: "help", text: "Every action needs a reason; it goes to the audit log." }),
        field("mute-for", "Mute for", this.muteFor)),
      h("div", { class: "filters", role: "group", "aria-label": "Filters" },
        field("filter-status", "Status", this.status), field("filter-label", "Label", this.label),
        field("filter-room", "Room", this.room), field("filter-since", "Time", this.since), field("sort", "Order", this.order)),
      this.message,
      h("div", { class: "moderation" }, h("div", { class: "queue" }, this.list, this.more), this.watching.panel),
    );
    this.socket.on("connect", () => this.subscribe());
    this.socket.on("flag", (flag) => this.upsert(flag, true));
    this.socket.on("flag_updated", (flag) => this.upsert(flag, false));
    this.socket.on("connect_error", (error) => { this.message.textContent = `The dashboard cannot connect: ${sentence(error)}`; });
  }

  async subscribe() {
    try {
      const ack = await call(this.socket, "subscribe", {});
      ack.open.forEach((flag) => this.flags.set(flag.id, flag));
      this.draw();
      this.watching.again();
    } catch (error) {
      this.message.textContent = `The flags could not be loaded: ${sentence(error)}`;
    }
  }

  upsert(flag, fresh) {
    const before = this.flags.get(flag.id);
    this.flags.set(flag.id, flag);
    if (fresh) this.message.textContent = `New flag: ${Object.keys(flag.labels).join(", ") || flag.reason} in a message from ${flag.message.sender.name}.`;
    else if (this.mine(before) && !this.mine(flag) && !this.acting) this.message.textContent = this.lostClaim(flag);
    this.draw();
  }

  mine(flag) {
    return Boolean(flag && flag.claimed_by && flag.claimed_by.user_id === this.me.id);
  }

  lostClaim(flag) {
    const whose = `the flag on ${flag.message.sender.name}'s message`;
    if (flag.claimed_by) return `${flag.claimed_by.name} took over ${whose}, which you had claimed.`;
    if (!LIVE.has(flag.status)) return `Another moderator closed ${whose} (${flag.status}), which you had claimed.`;
    return `Your claim on ${whose} ended.`;
  }

  filtersChanged() {
    this.shown = PAGE;
    this.apiHasMore = false;
    this.draw();
    if (!LIVE.has(this.status.value)) this.loadClosed(false);
  }

  /** Flags the live queue does not keep (dismissed, actioned, any status), from the API. */
  async loadClosed(next) {
    const query = new URLSearchParams({ sort: this.order.value, limit: "50" });
    if (this.status.value) query.set("status", this.status.value);
    if (this.label.value) query.set("label", this.label.value);
    if (UUID.test(this.room.value.trim())) query.set("room", this.room.value.trim());
    if (this.since.value) query.set("since", new Date(Date.now() - Number(this.since.value) * 1000).toISOString());
    if (next && this.nextOffset) query.set("offset", String(this.nextOffset));
    try {
      const page = await api("GET", `/v1/moderation/flags?${query}`);
      page.flags.forEach((flag) => this.flags.set(flag.id, flag));
      this.nextOffset = page.next_offset;
      this.apiHasMore = page.has_more;
      this.draw();
    } catch (error) {
      this.message.textContent = `The flags could not be loaded: ${sentence(error)}`;
    }
  }

  /** The next page: flags held but not drawn, then the API's next page of closed ones. */
  showMore() {
    this.shown += PAGE;
    if (this.visible().length < this.shown && this.closedToLoad()) this.loadClosed(true);
    else this.draw();
  }

  closedToLoad() {
    return this.apiHasMore && !LIVE.has(this.status.value);
  }

  visible() {
    const status = this.status.value;
    const label = this.label.value;
    const room = this.room.value.trim();
    const since = Number(this.since.value);
    const flags = [...this.flags.values()].filter((flag) =>
      (!status || flag.status === status) &&
      (!label || label in flag.labels) &&
      (!room || flag.room.startsWith(room)) &&
      (!since || Date.now() - Date.parse(flag.ts) < since * 1000));
    const byNewest = (a, b) => Date.parse(b.ts) - Date.parse(a.ts);
    return flags.sort(this.order.value === "severity" ? (a, b) => severity(b) - severity(a) || byNewest(a, b) : byNewest);
  }

  draw() {
    const focused = document.activeElement && document.activeElement.closest("[data-flag] [data-control]");
    const keep = focused && [focused.closest("[data-flag]").dataset.flag, focused.dataset.control];
    const labels = new Set([...this.flags.values()].flatMap((flag) => Object.keys(flag.labels)));
    const chosen = this.label.value;
    this.label.replaceChildren(h("option", { value: "" }, "Any label"), ...[...labels].sort().map((label) => h("option", { value: label, selected: label === chosen }, label)));
    const open = [...this.flags.values()].filter((flag) => flag.status === "open").length;
    this.count.textContent = `${open} open`;
    const flags = this.visible();
    const drawn = flags.slice(0, this.shown);
    this.list.replaceChildren(...drawn.map((flag) => this.item(flag)));
    this.more.hidden = drawn.length === flags.length && !this.closedToLoad();
    if (!flags.length) this.list.append(h("li", { class: "empty", text: "No flags match." }));
    if (keep) { // a redraw must not take the keyboard's place away
      const again = this.list.querySelector(`[data-flag="${keep[0]}"] [data-control="${keep[1]}"]`);
      if (again) again.focus();
    }
  }

  item(flag) {
    const scores = Object.entries(flag.labels).map(([label, score]) => `${label} ${Math.round(score * 100)}%`).join(", ");
    const button = (control, text, onclick, extra = {}) => h("button", { type: "button", "data-control": control, onclick, ...extra }, text);
    const claimButtons = this.mine(flag)
      ? [button("renew", "Renew", () => this.claim(flag), { "aria-describedby": `claim-${flag.id}` }),
        button("release", "Release", () => this.release(flag), { "aria-describedby": `claim-${flag.id}` })]
      : LIVE.has(flag.status) ? [button("claim", "Claim", () => this.claim(flag))] : [];
    return h(
      "li",
      { class: `card flag ${flag.status}${flag.claimed_by ? " claimed" : ""}`, "data-flag": flag.id },
      h("p", { class: "meta" }, h("strong", { text: flag.message.sender.name }), ` · ${formatTime(flag.ts)} · ${flag.status} · ${scores || flag.reason}`),
      this.claimNote(flag),
      h("blockquote", { class: "evidence", text: flag.message.body }),
      flag.current === "" ? h("p", { class: "help", text: "Members no longer see this message." }) : null,
      this.confirmation(flag),
      h("div", { class: "buttons" },
        ...claimButtons,
        ...ACTIONS.map(([action, text, what]) => button(action, text, () => this.act(flag, action, what))),
        button("watch", "Watch", () => this.watching.watch(flag.room))),
      this.histories.section(flag),
      this.trails.section(flag),
    );
  }

  claimNote(flag) {
    const holder = flag.claimed_by;
    if (!holder) return null;
    const who = this.mine(flag) ? "you" : holder.name;
    return h("p", { class: `claim${this.mine(flag) ? " mine" : ""}`, id: `claim-${flag.id}`, text: `Claimed by ${who} until ${clock(holder.until)}` });
  }

  confirmation(flag) {
    const asked = this.confirming.get(flag.id);
    if (!asked) return null;
    return h("div", { class: "confirm", role: "alert" },
      h("p", { text: `${asked.holder.name} has claimed this flag. Take it over and ${asked.what}?` }),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "danger", "data-control": "take-over", onclick: () => this.takeOver(flag) }, "Take over"),
        h("button", { type: "button", "data-control": "cancel", onclick: () => { this.confirming.delete(flag.id); this.draw(); } }, "Cancel")));
  }

  /** Send `event`; another moderator's claim asks this one to confirm a take-over first. */
  async send(flag, event, payload, what) {
    const holder = flag.claimed_by;
    if (!payload.take_over && holder && holder.user_id !== this.me.id) return this.askTakeOver(flag, event, payload, what, holder);
    this.acting = true;
    try {
      const ack = await ask(this.socket, event, payload);
      if (ack.ok) {
        this.confirming.delete(flag.id);
        this.upsert(ack.flag, false);
        return ack;
      }
      if (ack.error.code === "conflict" && ack.claimed_by) return this.askTakeOver(flag, event, payload, what, ack.claimed_by);
      this.message.textContent = `That did not work: ${sentence(ack.error)}`;
    } catch (error) {
      this.message.textContent = `That did not work: ${sentence(error)}`;
    } finally {
      this.acting = false;
    }
    return null;
  }

  askTakeOver(flag, event, payload, what, holder) {
    this.confirming.set(flag.id, { event, payload, holder, what });
    this.message.textContent = `${holder.name} has claimed this flag: confirm to take it over.`;
    this.draw();
    const button = this.list.querySelector(`[data-flag="${flag.id}"] [data-control="take-over"]`);
    if (button) button.focus();
    return null;
  }

  async takeOver(flag) {
    const asked = this.confirming.get(flag.id);
    this.confirming.delete(flag.id);
    const ack = await this.send(flag, asked.event, { ...asked.payload, take_over: true }, asked.what);
    if (ack && asked.event === "act") this.acted(flag, asked.payload);
    else if (ack) this.message.textContent = `You took over the flag from ${asked.holder.name}.`;
  }

  async claim(flag) {
    const ack = await this.send(flag, "claim", { flag_id: flag.id }, "claim it");
    if (ack) this.message.textContent = `You claimed the flag until ${clock(ack.flag.claimed_by.until)}; other moderators see it.`;
  }

  async release(flag) {
    const ack = await this.send(flag, "release", { flag_id: flag.id }, "release it");
    if (ack) this.message.textContent = "You released the flag.";
  }

  async act(flag, action, what) {
    const reason = this.reason.value.trim();
    if (!reason) {
      this.message.textContent = "Write a reason before acting on a flag.";
      this.reason.focus();
      return;
    }
    const payload = { flag_id: flag.id, action, reason };
    if (action === "mute") payload.duration_s = Number(this.muteFor.value);
    const ack = await this.send(flag, "act", payload, what);
    if (ack) this.acted(flag, payload);
  }

  acted(flag, payload) {
    this.trails.load(flag.id); // the server's trail, this action included
    this.message.textContent = `Done: you ${PAST[payload.action]}.`;
    this.draw();
    if (this.watching.room === flag.room) this.watching.watch(flag.room);
  }
}
