// A consult's call in p2p mode (call_media.js picks the mode): one RTCPeerConnection per other
// participant, negotiated the "perfect negotiation" way: both sides offer when they need to; on
// a collision the impolite side (the join ack's `polite` flag says which we are) ignores the
// other's offer, the polite side rolls back and answers. Signals name the connections at both
// ends (`session`, `to_session`), so after either side reconnects and starts a new connection,
// nothing meant for an old one lands on the new one, whichever order the hub's events and the
// other side's signals arrive in.
import { call } from "./sockets.js";
import { sentence, showError } from "./ui.js";

const ICE_STALL_MS = 5000;
const ICE_RETRIES = 3;

export class Call {
  constructor({ socket, consultId, stream, onRemote, onGone }) {
    Object.assign(this, { socket, consultId, stream, onRemote, onGone });
    this.polite = true;
    this.iceServers = [];
    this.peers = new Map(); // user_id -> {pc, session, remote, stale, makingOffer, ignoreOffer, inbox, outbox, early}
  }

  configure({ polite, iceServers }) {
    this.polite = polite;
    this.iceServers = iceServers;
  }

  /** Our connection to `userId`, opened on first use. */
  peer(userId) {
    return this.peers.get(userId) || this.open(userId);
  }

  /**
   * A new connection to `userId`, replacing any we had. Each connection has a `session` name
   * that our signals carry; `remote` is the name of the other side's connection once heard.
   */
  open(userId, retries = 0) {
    if (this.peers.has(userId)) this.remove(userId);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    // Signals are handled one at a time: a candidate must wait for the offer before it.
    // Candidates that arrive before any remote description wait for it.
    const peer = { pc, session: randomName(), remote: null, stale: false, makingOffer: false, ignoreOffer: false, inbox: Promise.resolve(), outbox: Promise.resolve(), early: [], gathered: false, retries };
    this.peers.set(userId, peer);
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    pc.onnegotiationneeded = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        await this.signal(peer, userId, { description: pc.localDescription.toJSON() });
      } catch (error) {
        if (pc.signalingState !== "closed") showError(`The call could not be set up: ${sentence(error)}`);
      } finally {
        peer.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return;
      peer.gathered = true;
      this.signal(peer, userId, { candidate: candidate.toJSON() }).catch(() => {});
    };
    pc.ontrack = ({ streams }) => {
      if (this.peers.get(userId) === peer) this.onRemote(userId, streams[0]);
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
    pc.onsignalingstatechange = () => {
      if (pc.signalingState === "stable") this.watchIce(userId, peer);
    };
    return peer;
  }

  /**
   * ICE that has not started ICE_STALL_MS after a negotiation is retried, a few times at most
   * per connection and its replacements. A connection that gathered no candidate of its own
   * is replaced: one opened as the network came back can wait on it forever (seen in
   * Chromium), and an ICE restart gathers on the same stalled transport. Otherwise ICE
   * restarts, with fresh candidates.
   */
  watchIce(userId, peer) {
    clearTimeout(peer.iceWatch);
    peer.iceWatch = setTimeout(() => {
      const { pc } = peer;
      if (this.peers.get(userId) !== peer || peer.retries >= ICE_RETRIES) return;
      if (pc.iceConnectionState !== "new" && pc.iceConnectionState !== "failed") return;
      peer.retries += 1;
      if (peer.gathered) pc.restartIce(); // a new offer follows (negotiationneeded)
      else this.open(userId, peer.retries);
    }, ICE_STALL_MS);
  }

  /**
   * Signals to a peer go one at a time, each after the last one's ack: the hub runs a
   * connection's events concurrently, so a later signal could overtake an earlier one.
   */
  signal(peer, userId, message) {
    const sessions = { session: peer.session, ...(peer.remote ? { to_session: peer.remote } : {}) };
    const payload = { consult_id: this.consultId, to: userId, ...sessions, ...message };
    const sent = peer.outbox.then(() => call(this.socket, "signal", payload));
    peer.outbox = sent.catch(() => {});
    return sent;
  }

  handle(message) {
    const peer = this.route(message);
    if (!peer) return Promise.resolve(); // meant for a connection we have replaced, or from one they have
    peer.inbox = peer.inbox.then(() => this.process(peer, message));
    return peer.inbox;
  }

  /**
   * Which connection a signal is for. An offer from a connection of theirs we have not heard
   * before, once we know another, means they started afresh: we do too. Answers and candidates
   * for our replaced connections, and candidates from their replaced ones, are dropped.
   */
  route({ from, description, session, to_session: toSession }) {
    const known = this.peers.get(from);
    if (!known) return this.open(from);
    const fromOther = session && known.remote && session !== known.remote;
    if (description?.type === "offer") return fromOther ? this.open(from) : known;
    if (toSession && toSession !== known.session) return null;
    if (description) return known; // an answer to our offer, from whichever connection of theirs
    return fromOther ? null : known;
  }

  async process(peer, { from, description, candidate, session }) {
    const { pc } = peer;
    try {
      if (description) {
        const collision = description.type === "offer" && (peer.makingOffer || pc.signalingState !== "stable");
        peer.ignoreOffer = !this.polite && collision;
        if (peer.ignoreOffer) return;
        await pc.setRemoteDescription(description); // rolls back our own offer when polite
        peer.remote = session || peer.remote;
        for (const early of peer.early.splice(0)) {
          if (!early.session || early.session === peer.remote) await pc.addIceCandidate(early.candidate).catch(() => {});
        }
        if (description.type === "offer") {
          await pc.setLocalDescription();
          await this.signal(peer, from, { description: pc.localDescription.toJSON() });
        }
      } else if (candidate && !pc.remoteDescription) {
        peer.early.push({ candidate, session });
      } else if (candidate) {
        try {
          await pc.addIceCandidate(candidate);
        } catch (error) {
          if (!peer.ignoreOffer) throw error;
        }
      }
    } catch (error) {
      if (pc.signalingState !== "closed") showError(`The call could not be set up: ${sentence(error)}`);
    }
  }

  /** Our connection to the hub dropped: after it is back, these connections are replaced. */
  markStale() {
    for (const peer of this.peers.values()) peer.stale = true;
  }

  /** A fresh connection to each of `userIds` we have none to, or only a stale one. */
  connect(userIds) {
    for (const userId of userIds) {
      const peer = this.peers.get(userId);
      if (!peer || peer.stale) this.open(userId);
    }
  }

  /** Swap a device mid-call (or stop sending video, `track` null) without renegotiating. */
  async replaceTrack(kind, track) {
    for (const { pc } of this.peers.values()) {
      const transceiver = pc.getTransceivers().find((t) => t.receiver.track.kind === kind);
      if (transceiver) await transceiver.sender.replaceTrack(track);
    }
  }

  remove(userId) {
    const peer = this.peers.get(userId);
    if (!peer) return;
    clearTimeout(peer.iceWatch);
    peer.pc.close();
    this.peers.delete(userId);
    this.onGone(userId);
  }

  close() {
    for (const userId of [...this.peers.keys()]) this.remove(userId);
  }
}

export function randomName() {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}
