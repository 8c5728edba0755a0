// The Node.js socket.io 4.8 reference for `pawhub bench chat --target node`: the same /chat
// `join` and `send` -> broadcast `message` exchange as pawhub's hub, without storage.
//
// Environment: PORT (required), JWT_SECRET (tokens are verified as HS256 JWTs, as pawhub does),
// REDIS_URL (optional: several processes share rooms through @socket.io/redis-adapter),
// REDIS_NAMESPACE (prefix of the adapter's channels).
//
// Each process numbers a room's messages in memory, so with several processes `seq` is only
// per process; the load tester counts losses with a per-sender counter it puts in client_id.

import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.env.PORT);
const secret = process.env.JWT_SECRET ?? "";
if (!port || !secret) {
  console.error("PORT and JWT_SECRET are required");
  process.exit(2);
}

function verifyAccessToken(token) {
  if (typeof token !== "string") return null;
  const [header, payload, signature] = token.split(".");
  if (!header || !payload || !signature) return null;
  const expected = createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
  if (claims.typ !== "access" || !(claims.exp > Date.now() / 1000)) return null;
  return { id: claims.sub, name: claims.name, role: claims.role };
}

const http = createServer((request, response) => {
  if (request.url === "/healthz") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end('{"status":"ok"}');
  }
});

// The same engine settings as pawhub's hub (realtime/server.py).
const io = new Server(http, {
  cors: { origin: "*" },
  pingInterval: 20000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1_000_000,
});

if (process.env.REDIS_URL) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const key = `${process.env.REDIS_NAMESPACE ?? "pawhub"}:bench-reference`;
  io.adapter(createAdapter(pub, sub, { key }));
}

const chat = io.of("/chat");
const lastSeq = new Map();

chat.use((socket, next) => {
  const sender = verifyAccessToken(socket.handshake.auth?.token);
  if (!sender) return next(new Error("unauthorized"));
  socket.data.sender = sender;
  next();
});

function refuse(ack, code, message) {
  if (typeof ack === "function") ack({ ok: false, error: { code, message } });
}

chat.on("connection", (socket) => {
  socket.on("join", (payload, ack) => {
    const room = payload?.room;
    if (typeof room !== "string") return refuse(ack, "invalid", "room is required");
    socket.join(room);
    if (typeof ack === "function") {
      ack({ ok: true, room, last_seq: lastSeq.get(room) ?? 0, missed: [], has_more: false });
    }
  });

  socket.on("send", (payload, ack) => {
    const { room, client_id: clientId, body } = payload ?? {};
    if (typeof room !== "string" || typeof clientId !== "string" || typeof body !== "string") {
      return refuse(ack, "invalid", "room, client_id and body are required");
    }
    if (!socket.rooms.has(room)) return refuse(ack, "forbidden", "join the room first");
    const seq = (lastSeq.get(room) ?? 0) + 1;
    lastSeq.set(room, seq);
    const message = {
      id: randomUUID(),
      room,
      seq,
      client_id: clientId,
      sender: socket.data.sender,
      body,
      ts: new Date().toISOString(),
      edited_at: null,
      deleted: false,
    };
    chat.to(room).emit("message", message);
    if (typeof ack === "function") ack({ ok: true, message });
  });
});

http.listen(port, "127.0.0.1", () => console.log(`reference listening on ${port}`));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => io.close(() => process.exit(0)));
}
