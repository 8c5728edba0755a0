// The call's media in the mode the hub chose: `p2p` (rtc.js, a connection per other participant)
// or `sfu` (sfu_call.js, one or two connections to the hub's media server). A call moves from p2p to
// sfu mid-call when it grows or a recording starts (`mode`): the p2p connections close and the
// SFU connection opens; it never moves back. `livekit` is not supported by this page yet.
import { Call } from "./rtc.js";
import { SfuCall } from "./sfu_call.js";
import { showError } from "./ui.js";

export class CallMedia {
  constructor(options) {
    this.p2p = new Call(options);
    this.sfu = new SfuCall(options);
    this.mode = "p2p";
  }

  get active() {
    return this.mode === "sfu" ? this.sfu : this.p2p;
  }

  /** The active connections, as the quality reporter reads them. */
  get peers() {
    return this.mode === "livekit" ? new Map() : this.active.peers;
  }

  /** The call as a join ack or `admitted` describes it. */
  configure({ mode, polite, iceServers, sfuConnections }) {
    this.p2p.configure({ polite: polite ?? this.p2p.polite, iceServers: iceServers ?? this.p2p.iceServers });
    this.sfu.configure({ iceServers: iceServers ?? this.sfu.iceServers, connections: sfuConnections });
    if (mode) this.use(mode);
  }

  use(mode) {
    if (mode === this.mode) return;
    if (mode === "livekit") showError("This call runs in livekit mode, which this page does not support yet.");
    this.active.close();
    this.mode = mode;
  }

  /** We are in the call, with `peerIds` (null: not told) as the others in it. */
  connect(peerIds = null) {
    if (this.mode === "sfu") this.sfu.connect(peerIds);
    else if (this.mode === "p2p") this.p2p.connect(peerIds || []);
  }

  /** `mode {mode}`: the call changed mode; renegotiate if we are in it. */
  moved(mode, inCall) {
    this.use(mode);
    if (inCall) this.connect();
  }

  /** `sfu_lost`: the replica hosting the call's media server died; connect to it anew. */
  lost() {
    if (this.mode === "sfu" && this.sfu.pc) this.sfu.open();
  }

  handle(message) {
    if (message.from === "sfu") return this.mode === "sfu" ? this.sfu.handle(message) : undefined;
    return this.mode === "p2p" ? this.p2p.handle(message) : undefined; // left over from p2p
  }

  /** `signal_failed`: the media server, hosted on another replica, refused a signal. */
  failed(event) {
    if (this.mode === "sfu" && this.sfu.pc) this.sfu.refused(this.sfu.pc, event);
  }

  peerJoined({ user_id: userId, rejoined }) {
    if (this.mode !== "p2p") return; // the media server offers their tracks
    if (rejoined) this.p2p.open(userId); // they reconnected: a new connection
    else this.p2p.peer(userId);
  }

  remove(userId) {
    if (this.mode !== "livekit") this.active.remove(userId);
  }

  markStale() {
    this.p2p.markStale();
    this.sfu.markStale();
  }

  async replaceTrack(kind, track) {
    if (this.mode !== "livekit") await this.active.replaceTrack(kind, track);
  }

  close() {
    this.p2p.close();
    this.sfu.close();
  }
}
