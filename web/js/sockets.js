// Socket.IO connections to the hub (same origin), authenticated with the current access token
// on every (re)connect and renewed with `auth` whenever it is refreshed, and acks turned into
// promises that reject with the ack's error.
import { io } from "/app/vendor/socket.io.esm.min.js";
import { accessToken, onTokenRefresh } from "./auth.js";

export function connect(namespace) {
  const socket = io(namespace, {
    transports: ["websocket"],
    auth: (send) => send({ token: accessToken() }),
    reconnectionDelayMax: 4000,
  });
  // The hub ends a session whose token lapsed without renewal: `expired`, then a disconnect
  // from the server's side, which Socket.IO does not retry. Renew before that; if it happens
  // anyway (a laptop asleep through the refresh), connect again with the current token.
  const stopRenewing = onTokenRefresh((token) => {
    if (socket.connected) socket.emit("auth", { token });
  });
  let lapsed = false;
  socket.on("expired", () => {
    lapsed = true;
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") stopRenewing(); // the page closed it
    else if (lapsed && reason === "io server disconnect" && accessToken()) socket.connect();
    lapsed = false;
  });
  return socket;
}

/** Emit with an ack; resolves the ack on `{ok:true}`, rejects with its error otherwise (its
 * `code` the ack's error code). */
export function call(socket, event, payload, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, payload, (timedOut, ack) => {
      if (timedOut) reject(new Error("the server did not answer in time; try again"));
      else if (ack && ack.ok) resolve(ack);
      else reject(Object.assign(new Error((ack && ack.error && ack.error.message) || "the server refused"), { code: ack && ack.error && ack.error.code }));
    });
  });
}

/** A banner that tells offline from reconnecting, shown only after a short grace period. */
export class ConnectionBanner {
  constructor(element, graceMs = 1500) {
    this.element = element;
    this.graceMs = graceMs;
    this.down = new Set();
    this.timer = null;
    window.addEventListener("online", () => this.update());
    window.addEventListener("offline", () => this.update());
  }

  watch(socket, name) {
    socket.on("disconnect", () => {
      this.down.add(name);
      this.schedule();
    });
    socket.on("connect", () => {
      this.down.delete(name);
      this.update();
    });
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.update(), this.graceMs);
  }

  update() {
    if (this.down.size === 0) {
      clearTimeout(this.timer);
      this.element.hidden = true;
      this.element.textContent = "";
      return;
    }
    this.element.hidden = false;
    this.element.textContent = navigator.onLine
      ? "Connection lost. Reconnecting…"
      : "You are offline. We will reconnect when your network is back.";
  }
}
