// The chat panel of a room (CONTRACT.md /chat): history with "load earlier", recovery after a
// reconnect with since_seq, sends deduplicated by client_id (unacknowledged sends are repeated
// with the same client_id after a reconnect), typing, read receipts, unread count, Report.
import { call } from "./sockets.js";
import { h, sentence, showError } from "./ui.js";

const PAGE = 50;
const TYPING_IDLE_MS = 3000;
const RETRY_MS = 1000; // times the attempt number
const MAX_RETRIES = 5;

export class ChatPanel {
  constructor(socket, room, me) {
    this.socket = socket;
    this.room = room;
    this.me = me;
    this.messages = new Map(); // seq -> Message
    this.pending = new Map(); // client_id -> body, until the server acknowledges it
    this.retries = new Map(); // client_id -> sends answered `unavailable` so far
    this.lastSeq = null;
    this.oldestSeq = null;
    this.readBy = new Map(); // user_id -> highest seq they read
    this.typing = new Map(); // user_id -> name
    this.unread = 0;
    this.typingTimer = null;
    this.element = this.build();
    socket.on("connect", () => this.join());
    socket.on("message", (message) => message.room === room && this.receive(message));
    socket.on("message_edited", (edit) => edit.room === room && this.edited(edit));
    socket.on("message_deleted", (gone) => gone.room === room && this.deleted(gone));
    socket.on("typing", (event) => event.room === room && this.typingChanged(event));
    socket.on("receipt", (receipt) => receipt.room === room && this.receipt(receipt));
    document.addEventListener("visibilitychange", () => this.markRead());
    if (socket.connected) this.join();
  }

  build() {
    this.heading = h("h2", { id: "chat-heading", text: "Chat" });
    this.earlier = h("button", { type: "button", hidden: true, onclick: () => this.loadEarlier() }, "Load earlier messages");
    this.list = h("ol", { class: "messages" });
    this.log = h("div", { class: "log", role: "log", "aria-label": "Chat", "aria-live": "polite", tabindex: "0" }, this.earlier, this.list);
    this.typingLine = h("p", { class: "typing", "aria-live": "polite" });
    this.input = h("input", { id: "chat-message", name: "message", autocomplete: "off", maxlength: "4000", oninput: () => this.typed() });
    const form = h(
      "form",
      { class: "composer", onsubmit: (event) => { event.preventDefault(); this.send(); } },
      h("label", { for: "chat-message", text: "Message" }),
      this.input,
      h("button", { type: "submit" }, "Send"),
    );
    return h("section", { class: "chat", "aria-labelledby": "chat-heading" }, this.heading, this.log, this.typingLine, form);
  }

  async join() {
    try {
      const payload = { room: this.room };
      if (this.lastSeq !== null) payload.since_seq = this.lastSeq;
      const ack = await call(this.socket, "join", payload);
      if (this.lastSeq === null || ack.has_more) await this.loadPage(null);
      else ack.missed.forEach((message) => this.receive(message));
      for (const [clientId, body] of this.pending) this.deliver(clientId, body);
    } catch (error) {
      showError(`The chat could not be joined: ${sentence(error)}`);
    }
  }

  async loadPage(beforeSeq) {
    const payload = { room: this.room, limit: PAGE };
    if (beforeSeq !== null) payload.before_seq = beforeSeq;
    const ack = await call(this.socket, "history", payload);
    ack.messages.forEach((message) => this.receive(message, { quiet: true }));
    this.earlier.hidden = !ack.has_more;
    this.markRead();
  }

  async loadEarlier() {
    try {
      await this.loadPage(this.oldestSeq);
    } catch (error) {
      showError(`Earlier messages could not be loaded: ${sentence(error)}`);
    }
  }

  send() {
    const body = this.input.value.trim();
    if (!body) return;
    const clientId = crypto.randomUUID();
    this.pending.set(clientId, body);
    this.input.value = "";
    this.stopTyping();
    this.deliver(clientId, body);
  }

  async deliver(clientId, body) {
    if (!this.socket.connected) return; // repeated with the same client_id after the reconnect
    try {
      const ack = await call(this.socket, "send", { room: this.room, client_id: clientId, body });
      this.pending.delete(clientId);
      this.retries.delete(clientId);
      this.receive(ack.message, { quiet: true });
    } catch (error) {
      if (!this.socket.connected) return;
      // A hub shutting down (or briefly without its database) answers `unavailable`: try again
      // shortly, or after the reconnect; the same client_id never stores it twice.
      const tries = (this.retries.get(clientId) || 0) + 1;
      if (error.code === "unavailable" && tries <= MAX_RETRIES) {
        this.retries.set(clientId, tries);
        setTimeout(() => { if (this.pending.has(clientId)) this.deliver(clientId, body); }, RETRY_MS * tries);
        return;
      }
      this.pending.delete(clientId);
      this.retries.delete(clientId);
      showError(`Your message was not sent: ${sentence(error)}`);
      this.input.value ||= body;
    }
  }

  receive(message, { quiet = false } = {}) {
    if (this.messages.has(message.seq)) return;
    this.messages.set(message.seq, message);
    if (this.lastSeq === null || message.seq > this.lastSeq) this.lastSeq = message.seq;
    if (this.oldestSeq === null || message.seq < this.oldestSeq) this.oldestSeq = message.seq;
    const item = this.item(message);
    const after = [...this.list.children].find((child) => Number(child.dataset.seq) > message.seq);
    this.list.insertBefore(item, after || null);
    if (!after) this.log.scrollTop = this.log.scrollHeight;
    if (!quiet && message.sender.id !== this.me.id) {
      this.typing.delete(message.sender.id);
      this.showTyping();
      if (document.hidden) {
        this.unread += 1;
        this.updateUnread();
      }
      this.markRead();
    }
  }

  item(message) {
    const mine = message.sender.id === this.me.id;
    const body = message.deleted ? h("em", { text: "This message was removed." }) : message.body;
    const item = h(
      "li",
      { class: mine ? "mine" : "theirs", "data-seq": String(message.seq), id: `message-${message.id}` },
      h("span", { class: "sender", text: mine ? "You" : message.sender.name }),
      h("p", { class: "body" }, body),
      h("time", { datetime: message.ts, text: new Date(message.ts).toLocaleTimeString([], { timeStyle: "short" }) }),
      h("span", { class: "seen" }),
    );
    if (!mine && !message.deleted) {
      item.append(h("button", { type: "button", class: "link", onclick: () => this.report(message) }, "Report"));
    }
    return item;
  }

  replace(seq, changes) {
    const message = this.messages.get(seq);
    if (!message) return;
    const changed = { ...message, ...changes };
    this.messages.set(seq, changed);
    const old = this.list.querySelector(`[data-seq="${seq}"]`);
    if (old) old.replaceWith(this.item(changed));
  }

  edited(edit) {
    this.replace(edit.seq, { body: edit.body, edited_at: edit.edited_at });
  }

  deleted(gone) {
    this.replace(gone.seq, { deleted: true, body: "" });
  }

  async report(message) {
    try {
      await call(this.socket, "report", { room: this.room, id: message.id, reason: "reported by a participant" });
      this.typingLine.textContent = "Thank you. A moderator will review the message.";
    } catch (error) {
      showError(`The message could not be reported: ${sentence(error)}`);
    }
  }

  typed() {
    if (!this.typingTimer) call(this.socket, "typing", { room: this.room, typing: true }).catch(() => {});
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    if (!this.typingTimer) return;
    clearTimeout(this.typingTimer);
    this.typingTimer = null;
    call(this.socket, "typing", { room: this.room, typing: false }).catch(() => {});
  }

  typingChanged(event) {
    if (event.typing) this.typing.set(event.user_id, this.nameOf(event.user_id));
    else this.typing.delete(event.user_id);
    this.showTyping();
  }

  showTyping() {
    const names = [...this.typing.values()];
    this.typingLine.textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
  }

  nameOf(userId) {
    for (const message of this.messages.values()) if (message.sender.id === userId) return message.sender.name;
    return "Someone";
  }

  markRead() {
    if (document.hidden || this.lastSeq === null || !this.socket.connected) return;
    this.unread = 0;
    this.updateUnread();
    call(this.socket, "read", { room: this.room, seq: this.lastSeq }).catch(() => {});
  }

  receipt(receipt) {
    if (receipt.user_id === this.me.id) return;
    this.readBy.set(receipt.user_id, receipt.seq);
    const seen = Math.max(...this.readBy.values());
    for (const item of this.list.querySelectorAll("li.mine")) {
      item.querySelector(".seen").textContent = Number(item.dataset.seq) <= seen ? "Seen" : "";
    }
  }

  updateUnread() {
    this.heading.textContent = this.unread ? `Chat (${this.unread} unread)` : "Chat";
  }
}
