// Connection quality: every few seconds each peer connection's round-trip time, loss and
// jitter go to the hub (`stats`); the hub answers our own level (0-5) and tells the others
// theirs (`quality`), shown per participant; a poor level of our own shows a hint.
import { call } from "./sockets.js";

const PERIOD_MS = 4000;
const POOR = 2;
export const LEVEL_WORDS = ["no connection", "very poor", "poor", "fair", "good", "excellent"];

async function measure(pc) {
  let rtt = 0;
  let lost = 0;
  let received = 0;
  let jitter = 0;
  (await pc.getStats()).forEach((report) => {
    if (report.type === "candidate-pair" && report.nominated && report.currentRoundTripTime) {
      rtt = report.currentRoundTripTime * 1000;
    }
    if (report.type === "inbound-rtp") {
      lost += Math.max(report.packetsLost || 0, 0);
      received += report.packetsReceived || 0;
      jitter = Math.max(jitter, (report.jitter || 0) * 1000);
    }
  });
  return { rtt_ms: rtt, packet_loss: received + lost ? lost / (received + lost) : 0, jitter_ms: jitter };
}

export class QualityReporter {
  constructor({ socket, consultId, call: activeCall, onLevel, onOwnLevel }) {
    this.socket = socket;
    this.consultId = consultId;
    this.call = activeCall;
    socket.on("quality", (event) => event.consult_id === consultId && onLevel(event.user_id, event.level));
    this.onOwnLevel = onOwnLevel;
    this.timer = setInterval(() => this.report(), PERIOD_MS);
  }

  async report() {
    const peers = [...this.call.peers.values()];
    if (!peers.length || !this.socket.connected) return;
    const measures = await Promise.all(peers.map(({ pc }) => measure(pc)));
    const worst = measures.reduce((a, b) => (b.rtt_ms + b.packet_loss * 1e4 > a.rtt_ms + a.packet_loss * 1e4 ? b : a));
    try {
      const ack = await call(this.socket, "stats", { consult_id: this.consultId, ...worst });
      if (typeof ack.level === "number") this.onOwnLevel(ack.level, ack.level <= POOR);
    } catch {
      // a missed sample is replaced by the next one
    }
  }

  stop() {
    clearInterval(this.timer);
  }
}
