// A call in sfu mode: one RTCPeerConnection with the hub's media server (`to: "sfu"`). We offer
// first, publishing our camera and microphone; the room answers, then offers us the others'
// tracks as they come and go. Each forwarded track's stream is named after its publisher's
// user id (its msid), so a participant's audio and video share one tile. The room is the
// impolite peer: an offer from it while ours is out rolls ours back (the hub refuses ours as a
// conflict) and ours goes again once stable. The room never trickles; we do.
// Its signals name no connection: after a reconnect the hub drops our old connection to the
// room, and the new one ignores what was meant for the old one (the room offers only to a
// connection it has answered; an answer is taken only while an offer of ours is out).
// When the media server takes two connections per member (the join ack's `sfu_connections: 2`,
// Janus), `pc` publishes ours (we offer, `pc: "publish"`) and `sub` receives the others' (the
// media server offers, `pc: "subscribe"`). Our signals name our publish connection (`session`)
// and the media server's name it back (`to_session`): those for a connection we replaced are
// ignored.
// A connection that fails (ICE or DTLS), or whose signal the hub could not pass on now
// (`unavailable`, or no ack in time), is replaced after a pause, at most REPAIR_DELAYS_MS times
// until one connects; only then is the failure shown.
import { randomName } from "./rtc.js";
import { sentence, showError } from "./ui.js";

const ACK_TIMEOUT_MS = 10000;
const REPAIR_DELAYS_MS = [1000, 2000, 4000, 8000];
const PASSING = new Set(["timeout", "unavailable"]); // refusals a new connection may not meet

export class SfuCall {
  constructor({ socket, consultId, stream, onRemote, onGone }) {
    Object.assign(this, { socket, consultId, stream, onRemote, onGone });
    this.iceServers = [];
    this.split = false; // two connections: publish (`pc`) and subscribe (`sub`)
    this.pc = null;
    this.sub = null;
    this.session = null; // our name for `pc`
    this.stale = false;
    this.repairs = 0; // connections replaced since one last connected
    this.repairing = null; // the timer of the next replacement
    this.senders = new Map(); // kind -> the sender of our own track
    this.remote = new Map(); // user id -> {audio, video}: their latest tracks
    this.inbox = Promise.resolve(); // the room's signals, one at a time
    this.outbox = Promise.resolve(); // ours to the room, one at a time
  }

  configure({ iceServers, connections }) {
    this.iceServers = iceServers;
    if (connections) this.split = connections === 2;
  }

  /** Our connections, as the quality reporter reads connections. */
  get peers() {
    return new Map([...(this.pc ? [["sfu", { pc: this.pc }]] : []), ...(this.sub ? [["sfu-subscribe", { pc: this.sub }]] : [])]);
  }

  /** In the call with `peerIds` (null: unknown): a connection unless we have a live one. */
  connect(peerIds = null) {
    if (peerIds) for (const userId of [...this.remote.keys()]) if (!peerIds.includes(userId)) this.remove(userId);
    if (!this.pc || this.stale) this.open();
  }

  open() {
    clearTimeout(this.repairing);
    this.repairing = null;
    this.pc?.close();
    this.sub?.close();
    this.sub = null;
    // A closed connection's pending steps may never settle: the new one does not wait on them.
    this.inbox = Promise.resolve();
    this.outbox = Promise.resolve();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.session = randomName();
    this.stale = false;
    this.remote.clear(); // the room sends everyone's tracks again on the new connection
    for (const kind of ["audio", "video"]) {
      // A transceiver per kind even without a device, so one can be switched in later.
      const track = this.stream.getTracks().find((t) => t.kind === kind);
      this.senders.set(kind, pc.addTransceiver(track || kind, { direction: "sendonly", streams: [this.stream] }).sender);
    }
    pc.onnegotiationneeded = () => this.offer(pc);
    pc.onconnectionstatechange = () => this.watch(pc);
    pc.onicecandidate = ({ candidate }) => {
      // null: gathering is over; an empty candidate tells the room so.
      const init = candidate ? candidate.toJSON() : { candidate: "", sdpMLineIndex: 0 };
      if (this.pc === pc) this.signal({ candidate: init, ...this.named("publish") }).then((ack) => this.refused(pc, ack));
    };
    pc.ontrack = ({ track, streams }) => {
      if (this.pc === pc && streams[0]) this.show(streams[0].id, track);
    };
  }

  async offer(pc) {
    try {
      await pc.setLocalDescription();
      this.refused(pc, await this.signal({ description: pc.localDescription.toJSON(), ...this.named("publish") }));
    } catch (error) {
      this.failed(pc, error);
    }
  }

  /** What names a signal's connection when there are two (nothing when there is one). */
  named(which) {
    return this.split ? { pc: which, session: this.session } : {};
  }

  handle({ description, pc: which, to_session: toSession }) {
    const pc = this.pc;
    if (!pc || this.stale || !description) return this.inbox; // for a connection we replaced
    if (this.split && toSession !== this.session) return this.inbox;
    const work = this.split && which === "subscribe" ? () => this.subscribe(pc, description) : () => this.process(pc, description);
    this.inbox = this.inbox.then(work);
    return this.inbox;
  }

  /** The media server's offer of the others' tracks, on the subscribe connection of `pc`. */
  async subscribe(pc, description) {
    if (pc !== this.pc || description.type !== "offer") return;
    const sub = this.sub || this.openSubscriber();
    const named = this.named("subscribe"); // as it stands now: `open` may replace both
    try {
      await sub.setRemoteDescription(description);
      await sub.setLocalDescription();
      if (this.sub === sub) this.refused(sub, await this.signal({ description: sub.localDescription.toJSON(), ...named }));
    } catch (error) {
      this.failed(sub, error);
    }
  }

  openSubscriber() {
    const sub = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.sub = sub;
    sub.onconnectionstatechange = () => this.watch(sub);
    sub.onicecandidate = ({ candidate }) => {
      const init = candidate ? candidate.toJSON() : { candidate: "", sdpMLineIndex: 0 };
      if (this.sub === sub) this.signal({ candidate: init, ...this.named("subscribe") }).then((ack) => this.refused(sub, ack));
    };
    sub.ontrack = ({ track, streams }) => {
      if (this.sub === sub && streams[0]) this.show(streams[0].id, track);
    };
    return sub;
  }

  async process(pc, description) {
    if (pc !== this.pc) return;
    try {
      if (description.type === "offer") {
        if (!pc.remoteDescription) return; // meant for our previous connection
        await pc.setRemoteDescription(description); // rolls back an offer of ours: we are polite
        await pc.setLocalDescription();
        this.refused(pc, await this.signal({ description: pc.localDescription.toJSON() }));
      } else if (pc.signalingState === "have-local-offer") {
        await pc.setRemoteDescription(description);
      }
    } catch (error) {
      this.failed(pc, error);
    }
  }

  /** An error ack, or `signal_failed` from a room hosted on another replica. */
  refused(pc, ack) {
    // A conflict is an offer that crossed the room's: we answer the room's, then offer again.
    if (ack.ok || ack.error.code === "conflict") return;
    if (PASSING.has(ack.error.code)) this.repair(pc, ack.error);
    else this.failed(pc, ack.error);
  }

  watch(pc) {
    if (pc !== this.pc && pc !== this.sub) return;
    if (pc.connectionState === "connected") this.repairs = 0;
    if (pc.connectionState === "failed") this.repair(pc, new Error("the media connection failed"));
  }

  /** Replace our connections after a pause, unless a rejoin will (our socket dropped). */
  repair(pc, error) {
    if ((pc !== this.pc && pc !== this.sub) || this.repairing || this.stale) return;
    const delay = REPAIR_DELAYS_MS[this.repairs];
    if (delay === undefined) return this.failed(pc, error);
    this.repairs += 1;
    this.repairing = setTimeout(() => {
      this.repairing = null;
      if ((pc === this.pc || pc === this.sub) && !this.stale) this.open();
    }, delay);
  }

  failed(pc, error) {
    if ((pc === this.pc || pc === this.sub) && pc.signalingState !== "closed") showError(`The call could not be set up: ${sentence(error)}`);
  }

  /**
   * One signal at a time, each after the last one's ack (the hub runs a connection's events
   * concurrently, so a candidate could otherwise overtake its offer); resolves to the whole
   * ack, refusals included (their code matters here).
   */
  signal(message) {
    const sent = this.outbox.then(() => new Promise((resolve) => {
      this.socket.timeout(ACK_TIMEOUT_MS).emit("signal", { consult_id: this.consultId, to: "sfu", ...message }, (timedOut, ack) => {
        resolve(timedOut ? { ok: false, error: { code: "timeout", message: "the server did not answer in time" } } : ack);
      });
    }));
    this.outbox = sent;
    return sent;
  }

  show(userId, track) {
    const tracks = { ...this.remote.get(userId), [track.kind]: track };
    this.remote.set(userId, tracks);
    this.onRemote(userId, new MediaStream(Object.values(tracks)));
  }

  /** Our connection to the hub dropped: the hub drops our connection to the room on rejoin. */
  markStale() {
    this.stale = true;
  }

  /** Swap a device mid-call (or stop sending video, `track` null) without renegotiating. */
  async replaceTrack(kind, track) {
    await this.senders.get(kind)?.replaceTrack(track);
  }

  remove(userId) {
    this.remote.delete(userId);
    this.onGone(userId);
  }

  close() {
    clearTimeout(this.repairing);
    this.repairing = null;
    this.pc?.close();
    this.sub?.close();
    this.pc = this.sub = null;
    this.senders.clear();
    for (const userId of [...this.remote.keys()]) this.remove(userId);
  }
}
