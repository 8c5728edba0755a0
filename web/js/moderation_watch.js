// Watch: one flagged room's conversation, live and read-only, with flagged lines highlighted.
import { call } from "./sockets.js";
import { h, sentence } from "./ui.js";

export class WatchPanel {
  /** `isFlagged(message)` tells flagged lines; `say(text)` shows what went wrong. */
  constructor(socket, isFlagged, say) {
    this.socket = socket;
    this.isFlagged = isFlagged;
    this.say = say;
    this.room = null;
    this.log = null;
    this.panel = h("section", { class: "watch", "aria-label": "Watched room", hidden: true });
    socket.on("message", (message) => this.arrived(message));
    socket.on("message_edited", (edit) => this.arrived(edit));
    socket.on("message_deleted", (gone) => this.arrived({ ...gone, deleted: true }));
  }

  /** Watch the same room again (after a reconnect). */
  again() {
    if (this.room) this.watch(this.room);
  }

  async watch(room) {
    try {
      if (this.room && this.room !== room) await call(this.socket, "unwatch", { room: this.room });
      const ack = await call(this.socket, "watch", { room });
      this.room = room;
      this.log = h("ol", { class: "messages" });
      ack.messages.forEach((message) => this.log.append(this.line(message)));
      this.panel.replaceChildren(
        h("h2", { text: "Watching the room (read-only)" }),
        h("div", { class: "log", role: "log", "aria-label": "Watched conversation", tabindex: "0" }, this.log),
      );
      this.panel.hidden = false;
    } catch (error) {
      this.say(`The room could not be watched: ${sentence(error)}`);
    }
  }

  line(message) {
    const flagged = this.isFlagged(message);
    return h("li", { "data-seq": String(message.seq), class: flagged ? "flagged" : "" },
      h("span", { class: "sender", text: message.sender ? message.sender.name : "" }),
      h("p", { class: "body" }, message.deleted ? h("em", { text: "This message was removed." }) : message.body),
      flagged ? h("span", { class: "tag", text: "flagged" }) : null);
  }

  arrived(message) {
    if (!this.log || message.room !== this.room) return;
    const old = this.log.querySelector(`[data-seq="${message.seq}"]`);
    if (old && message.sender === undefined) {
      old.querySelector(".body").replaceChildren(message.deleted ? h("em", { text: "This message was removed." }) : message.body);
    } else if (!old) {
      this.log.append(this.line(message));
    }
  }
}
