// The official socket.io client, left to reconnect by itself, through a hub's drain. Prints a
// JSON line per connect and per disconnect (with its reason); exits on a line on stdin.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, token, transports] = process.argv.slice(2);
const say = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

const socket = io(`${url}/chat`, {
  auth: { token },
  transports: transports.split(","),
  reconnectionDelay: 100,
  reconnectionDelayMax: 200,
});
socket.on("connect", () => say("connected", { transport: socket.io.engine.transport.name }));
socket.on("disconnect", (reason) => say("disconnected", { reason }));
socket.io.on("open", () => {
  socket.io.engine.on("upgrade", (transport) => say("upgraded", { transport: transport.name }));
});

await createInterface({ input: process.stdin })[Symbol.asyncIterator]().next();
socket.disconnect();
process.exit(0);
