// The consult page: pre-call check, Join, the waiting room (the vet admits or denies), the call
// (tiles with names and muted badges, Mute, Camera, device switching, Leave, quality), chat, recording consent, and a
// reconnection banner; after a reconnect the call is renegotiated and the chat recovers. The
// call's media runs in p2p or sfu mode (call_media.js), and moves to sfu when the hub says so.
import { api, currentUser } from "./auth.js";
import { CallMedia } from "./call_media.js";
import { ChatPanel } from "./chat.js";
import { RecordingControls } from "./consent.js";
import { PreCall } from "./precall.js";
import { LEVEL_WORDS, QualityReporter } from "./quality.js";
import { ConnectionBanner, call, connect } from "./sockets.js";
import { h, onPageLeave, render, sentence, showError } from "./ui.js";

export async function consultPage(consultId) {
  const me = currentUser();
  let consult;
  try {
    consult = await api("GET", `/v1/consults/${consultId}`);
  } catch (error) {
    render(h("h1", { text: "Consult" }), h("p", { text: `This consult cannot be opened: ${sentence(error)}` }));
    return;
  }
  const upcoming = await api("GET", "/v1/consults").catch(() => []);
  const summary = upcoming.find((item) => item.id === consultId);
  const names = new Map();
  if (summary) for (const person of [summary.vet, summary.owner]) names.set(person.id, person.name);
  const nameOf = (userId) => names.get(userId) || "A participant";
  const isVet = consult.participants.some((p) => p.user_id === me.id && p.role === "vet");
  const vetName = summary ? summary.vet.name : "your vet";
  const title = summary ? `Consult for ${summary.pet.name}` : "Consult";

  const precall = new PreCall();
  const joinButton = h("button", { type: "button", class: "primary" }, "Join");
  const lobbyStatus = h("p", { class: "lobby-status", role: "status", "aria-live": "polite" });
  render(h("h1", { text: title }), lobbyStatus, precall.element, joinButton);
  onPageLeave(() => precall.stop()); // the camera, before the call takes it over and after
  const opening = precall.open();
  joinButton.addEventListener("click", async () => {
    joinButton.disabled = true;
    await opening; // join with the camera and microphone once they are open (or refused)
    new ConsultRoom({ consultId, consult, me, isVet, nameOf, vetName, title, stream: precall.handOver(), lobbyStatus }).start();
  }, { once: true });
}

class ConsultRoom {
  constructor(options) {
    Object.assign(this, options);
    this.stream ||= new MediaStream();
    this.rtc = connect("/rtc");
    this.chatSocket = connect("/chat");
    this.banner = h("div", { class: "banner", role: "status", hidden: true });
    this.connectionBanner = new ConnectionBanner(this.banner);
    this.connectionBanner.watch(this.rtc, "rtc");
    this.connectionBanner.watch(this.chatSocket, "chat");
    this.call = new CallMedia({
      socket: this.rtc,
      consultId: this.consultId,
      stream: this.stream,
      onRemote: (userId, stream) => this.showRemote(userId, stream),
      onGone: (userId) => {
        this.tiles.get(userId)?.remove();
        this.tiles.delete(userId);
      },
    });
    this.tiles = new Map();
    this.mediaOff = new Map(); // user_id -> {audio, video} for those whose microphone or camera is off
    this.waiting = true;
  }

  start() {
    onPageLeave(() => {
      this.rtc.emit("leave", { consult_id: this.consultId }); // sent before the disconnect
      this.close();
    });
    this.lobbyList = h("ul", { class: "lobby", "aria-label": "Waiting room" });
    this.selfVideo = h("video", { class: "self", autoplay: true, muted: true, playsinline: true, "aria-label": "Your video" });
    this.selfVideo.muted = true;
    this.selfVideo.srcObject = this.stream;
    this.remoteArea = h("div", { class: "remotes" });
    this.hint = h("p", { class: "hint", role: "status" });
    this.audioButton = h("button", { type: "button", hidden: true, onclick: () => this.enableAudio() }, "Click to enable audio");
    this.muteButton = h("button", { type: "button", "aria-pressed": "false", onclick: () => this.toggleMute() }, "Mute");
    this.cameraButton = h("button", { type: "button", "aria-pressed": "false", onclick: () => this.toggleCamera() }, "Camera off");
    const leaveButton = h("button", { type: "button", class: "danger", onclick: () => this.leave() }, "Leave");
    this.cameraSelect = h("select", { id: "call-camera", onchange: () => this.switchDevice("video", this.cameraSelect.value) });
    this.microphoneSelect = h("select", { id: "call-microphone", onchange: () => this.switchDevice("audio", this.microphoneSelect.value) });
    this.chat = new ChatPanel(this.chatSocket, this.consult.room, this.me);
    this.recording = new RecordingControls({ socket: this.rtc, consultId: this.consultId, isVet: this.isVet, nameOf: this.nameOf });
    const stage = h(
      "section",
      { class: "stage", "aria-label": "Call" },
      this.remoteArea,
      h("figure", { class: "tile self-tile" }, this.selfVideo, h("figcaption", { text: "You" })),
    );
    const controls = h(
      "div",
      { class: "controls", role: "group", "aria-label": "Call controls" },
      this.muteButton, this.cameraButton, leaveButton, this.audioButton,
      h("span", { class: "device" }, h("label", { for: "call-camera", text: "Camera" }), this.cameraSelect),
      h("span", { class: "device" }, h("label", { for: "call-microphone", text: "Microphone" }), this.microphoneSelect),
    );
    render(
      h("h1", { text: this.title }),
      this.banner,
      this.lobbyStatus,
      this.lobbyList,
      h("div", { class: "room" }, h("div", { class: "call-column" }, stage, this.hint, controls, this.recording.element), this.chat.element),
    );
    this.fillDevices();
    this.rtc.on("connect", () => this.join());
    this.rtc.on("disconnect", () => this.call.markStale()); // their ICE is renewed on rejoin
    this.rtc.on("lobby", (entry) => this.addWaiting(entry));
    this.rtc.on("lobby_left", ({ user_id: userId }) => this.lobbyList.querySelector(`[data-user="${userId}"]`)?.remove());
    this.rtc.on("admitted", (event) => this.admitted(event));
    this.rtc.on("denied", ({ reason }) => this.denied(reason));
    this.rtc.on("peer_joined", (event) => this.peerJoined(event));
    this.rtc.on("peer_left", ({ user_id: userId }) => { this.mediaOff.delete(userId); this.call.remove(userId); });
    this.rtc.on("media", (event) => event.consult_id === this.consultId && this.showMedia(event.user_id, event));
    this.rtc.on("signal", (message) => this.call.handle(message));
    this.rtc.on("signal_failed", (event) => this.call.failed(event));
    this.rtc.on("mode", ({ consult_id: id, mode }) => id === this.consultId && this.call.moved(mode, !this.waiting));
    this.rtc.on("sfu_lost", ({ consult_id: id }) => id === this.consultId && this.call.lost());
    this.quality = new QualityReporter({
      socket: this.rtc,
      consultId: this.consultId,
      call: this.call,
      onLevel: (userId, level) => this.showLevel(userId, level),
      onOwnLevel: (level, poor) => { this.hint.textContent = poor ? `Your connection is poor (${LEVEL_WORDS[level]}). Video may freeze; try moving closer to your router.` : ""; },
    });
  }

  async join() {
    try {
      const ack = await call(this.rtc, "join", { consult_id: this.consultId });
      this.call.configure({ mode: ack.mode, polite: ack.polite, iceServers: ack.ice_servers, sfuConnections: ack.sfu_connections });
      this.waiting = ack.waiting;
      if (ack.waiting) {
        this.lobbyStatus.textContent = `Waiting for Dr ${this.vetName.replace(/^Dr\.?\s+/, "")} to let you in. You can chat meanwhile.`;
      } else {
        this.lobbyStatus.textContent = this.isVet ? "You are in the consult. People who arrive wait for you below." : "";
        this.call.connect(otherIds(ack.peers, this.me.id));
        this.sendMedia(false);
      }
    } catch (error) {
      this.lobbyStatus.textContent = `You could not join the call: ${sentence(error)}`;
    }
  }

  addWaiting({ user_id: userId, name }) {
    if (this.lobbyList.querySelector(`[data-user="${userId}"]`)) return;
    const item = h("li", { "data-user": userId }, h("span", { text: `${name} is waiting` }));
    const decide = (event, extra) => async () => {
      try {
        await call(this.rtc, event, { consult_id: this.consultId, user_id: userId, ...extra });
        item.remove();
        this.lobbyStatus.textContent = event === "admit" ? `${name} joined the consult.` : `${name} was not let in.`;
      } catch (error) {
        showError(`That did not work: ${sentence(error)}`);
      }
    };
    item.append(
      h("button", { type: "button", class: "primary", onclick: decide("admit", {}) }, "Admit"),
      h("button", { type: "button", onclick: decide("deny", { reason: "The vet cannot see you now." }) }, "Deny"),
    );
    this.lobbyList.append(item);
    this.lobbyStatus.textContent = `${name} is waiting to join.`;
  }

  admitted(event) {
    this.waiting = false;
    this.lobbyStatus.textContent = "You are in the consult.";
    this.call.configure({ mode: event.mode, polite: event.polite });
    this.call.connect(otherIds(event.peers || [], this.me.id));
    this.sendMedia(false);
  }

  denied(reason) {
    this.lobbyStatus.textContent = `The vet could not let you in${reason ? `: ${sentence(reason)}` : "."}`;
    const again = h("button", { type: "button", class: "primary" }, "Ask to join again");
    again.addEventListener("click", () => { again.remove(); this.join(); }, { once: true });
    this.lobbyStatus.after(again);
  }

  peerJoined(event) {
    if (event.user_id === this.me.id) return;
    this.showMedia(event.user_id, { audio: true, video: true }); // a new connection of theirs says otherwise
    if (!this.waiting) this.call.peerJoined(event);
  }

  showRemote(userId, stream) {
    let tile = this.tiles.get(userId);
    if (!tile) {
      const video = h("video", { autoplay: true, playsinline: true, "aria-label": "Remote video" });
      tile = h("figure", { class: "tile", "data-user": userId },
        video,
        h("figcaption", {}, h("span", { text: this.nameOf(userId) }), h("span", { class: "media-state" }), h("span", { class: "quality", role: "img", "aria-label": "Connection quality" })));
      this.tiles.set(userId, tile);
      this.remoteArea.append(tile);
      this.showMedia(userId, this.mediaOff.get(userId) || { audio: true, video: true });
    }
    const video = tile.querySelector("video");
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      video.play().catch(() => { this.audioButton.hidden = false; });
    }
  }

  enableAudio() {
    for (const tile of this.tiles.values()) tile.querySelector("video").play().catch(() => {});
    this.audioButton.hidden = true;
  }

  showLevel(userId, level) {
    const badge = this.tiles.get(userId)?.querySelector(".quality");
    if (badge) {
      badge.textContent = `${"▮".repeat(level)}${"▯".repeat(5 - level)} ${LEVEL_WORDS[level]}`;
      badge.setAttribute("aria-label", `Connection quality: ${LEVEL_WORDS[level]}`);
      badge.dataset.level = String(level);
    }
  }

  /** Their microphone and camera, as `media` says: kept until their tile exists. */
  showMedia(userId, { audio, video }) {
    if (audio && video) this.mediaOff.delete(userId);
    else this.mediaOff.set(userId, { audio, video });
    const badge = this.tiles.get(userId)?.querySelector(".media-state");
    if (badge) badge.textContent = [audio ? "" : "Muted", video ? "" : "Camera off"].filter(Boolean).join(", ");
  }

  /** Tell the others whether our microphone and camera are on (after a change, or on coming
   * in with either off: a new connection starts with both on). */
  sendMedia(changed = true) {
    const audio = this.muteButton.textContent === "Mute";
    const video = this.cameraButton.textContent === "Camera off";
    if (this.waiting || (!changed && audio && video)) return;
    call(this.rtc, "media", { consult_id: this.consultId, audio, video }).catch((error) => showError(`The others could not be told: ${sentence(error)}`));
  }

  toggleMute() {
    const tracks = this.stream.getAudioTracks();
    const muted = this.muteButton.textContent === "Mute";
    tracks.forEach((track) => { track.enabled = !muted; });
    this.muteButton.textContent = muted ? "Unmute" : "Mute";
    this.muteButton.setAttribute("aria-pressed", String(muted));
    this.sendMedia();
  }

  async toggleCamera() {
    const off = this.cameraButton.textContent === "Camera off";
    if (off) {
      for (const track of this.stream.getVideoTracks()) {
        track.stop(); // the light goes out: the camera is really released
        this.stream.removeTrack(track);
      }
      await this.call.replaceTrack("video", null);
    } else {
      await this.switchDevice("video", this.cameraSelect.value);
    }
    this.cameraButton.textContent = off ? "Camera on" : "Camera off";
    this.cameraButton.setAttribute("aria-pressed", String(off));
    this.sendMedia();
  }

  async switchDevice(kind, deviceId) {
    try {
      const constraints = { [kind]: deviceId ? { deviceId: { exact: deviceId } } : true };
      const fresh = await navigator.mediaDevices.getUserMedia(constraints);
      const track = kind === "video" ? fresh.getVideoTracks()[0] : fresh.getAudioTracks()[0];
      const old = kind === "video" ? this.stream.getVideoTracks() : this.stream.getAudioTracks();
      old.forEach((t) => { t.stop(); this.stream.removeTrack(t); });
      if (kind === "audio") track.enabled = this.muteButton.textContent === "Mute";
      this.stream.addTrack(track);
      this.selfVideo.srcObject = this.stream;
      await this.call.replaceTrack(kind, track);
    } catch (error) {
      showError(`The ${kind === "video" ? "camera" : "microphone"} could not be switched: ${sentence(error)}`);
    }
  }

  async fillDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    for (const [select, kind, name] of [[this.cameraSelect, "videoinput", "Camera"], [this.microphoneSelect, "audioinput", "Microphone"]]) {
      select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) => h("option", { value: d.deviceId }, d.label || `${name} ${i + 1}`)));
    }
  }

  /** End the call, the camera and the connections (leaving, or another page shown). */
  close() {
    this.quality.stop();
    this.call.close();
    this.stream.getTracks().forEach((track) => track.stop());
    this.rtc.disconnect();
    this.chatSocket.disconnect();
  }

  async leave() {
    await call(this.rtc, "leave", { consult_id: this.consultId }).catch(() => {});
    this.close();
    render(h("h1", { text: "You left the consult" }), h("p", {}, h("a", { href: "/app/", "data-route": "" }, "Back to your consults")));
  }
}

function otherIds(peers, myId) {
  return peers.map((peer) => peer.user_id).filter((userId) => userId !== myId);
}
