// Drives pawhub's /chat with the official socket.io client. Prints one JSON line per step;
// waits for a line on stdin wherever the Python side has to act.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, token, room] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));
const nextLine = async () => (await lines.next()).value;

const socket = io(`${url}/chat`, { auth: { token }, reconnection: false });
const received = [];
socket.on("message", (message) => received.push(message));

await new Promise((resolve, reject) => {
  socket.once("connect", resolve);
  socket.once("connect_error", reject);
});
say("connected", { transport: socket.io.engine.transport.name });

const joined = await socket.emitWithAck("join", { room });
say("joined", { ok: joined.ok, last_seq: joined.last_seq });

const sent = await socket.emitWithAck("send", { room, client_id: "js-1", body: "hello from js" });
while (received.length < 1) await new Promise((r) => setTimeout(r, 20));
say("sent", { ok: sent.ok, seq: sent.message.seq, echoed: received[0].id === sent.message.id });

const lastSeen = received.at(-1).seq;
socket.disconnect();
say("offline", { last_seen: lastSeen });
await nextLine(); // the Python side sends while we are away

socket.connect();
await new Promise((resolve) => socket.once("connect", resolve));
const back = await socket.emitWithAck("join", { room, since_seq: lastSeen });
say("recovered", {
  ok: back.ok,
  missed: back.missed.map((m) => [m.seq, m.body]),
  has_more: back.has_more,
});

await nextLine(); // one more message, live this time
while (!received.some((m) => m.body === "live")) await new Promise((r) => setTimeout(r, 20));
// The client started on long-polling; by now it has upgraded to websocket.
for (let i = 0; i < 100 && socket.io.engine.transport.name !== "websocket"; i++) {
  await new Promise((r) => setTimeout(r, 20));
}
say("live", { seqs: received.map((m) => m.seq), transport: socket.io.engine.transport.name });
socket.disconnect();
process.exit(0);
