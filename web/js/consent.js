// Recording: the consent prompt (`I consent` / `Withdraw consent`), the vet's `Start recording`
// / `Stop recording`, and an indicator that stays visible while the consult records. Each
// refusal from the hub (consent_required, unavailable, ...) is shown as a sentence.
import { call } from "./sockets.js";
import { h, sentence } from "./ui.js";

export class RecordingControls {
  constructor({ socket, consultId, isVet, nameOf }) {
    this.socket = socket;
    this.consultId = consultId;
    this.nameOf = nameOf;
    this.status = h("p", { class: "recording-status", role: "status", text: "Not recording" });
    this.message = h("p", { class: "recording-message", "aria-live": "polite" });
    this.consentButton = h("button", { type: "button", onclick: () => this.consent(true) }, "I consent");
    this.withdrawButton = h("button", { type: "button", hidden: true, onclick: () => this.consent(false) }, "Withdraw consent");
    const controls = [this.consentButton, this.withdrawButton];
    if (isVet) {
      this.startButton = h("button", { type: "button", onclick: () => this.record("start") }, "Start recording");
      this.stopButton = h("button", { type: "button", hidden: true, onclick: () => this.record("stop") }, "Stop recording");
      controls.push(this.startButton, this.stopButton);
    }
    this.prompt = h(
      "p",
      { class: "consent-prompt" },
      "Recording keeps this consult's audio and video for the medical record. It needs everyone's consent; you can withdraw it at any time.",
    );
    this.element = h(
      "section",
      { class: "recording", "aria-label": "Recording" },
      this.status,
      this.prompt,
      h("div", { class: "buttons" }, ...controls),
      this.message,
    );
    socket.on("recording", (event) => event.consult_id === consultId && this.show(event.state));
    if (isVet) socket.on("recording_storage", (event) => event.consult_id === consultId && this.storage(event));
    socket.on("consent", (event) => {
      if (event.consult_id !== consultId) return;
      this.message.textContent = `${this.nameOf(event.user_id)} ${event.granted ? "consented to" : "withdrew consent for"} recording.`;
    });
  }

  show(state) {
    const recording = state === "recording";
    this.status.textContent = recording ? "● Recording" : state === "paused" ? "Recording paused" : "Not recording";
    this.status.classList.toggle("live", recording);
    if (this.startButton) {
      this.startButton.hidden = recording;
      this.stopButton.hidden = !recording;
    }
    if (recording && this.withdrawButton.hidden) this.prompt.classList.add("asking");
  }

  // The hub's recording storage (S3) is out of reach and its local buffer nears its limit, or
  // has drained again.
  storage({ near_full: nearFull, buffered_bytes: buffered, limit_bytes: limit }) {
    const megabytes = (bytes) => `${(bytes / 1024 ** 2).toFixed(1)} MB`;
    this.message.textContent = nearFull
      ? `Recording storage is out of reach: ${megabytes(buffered)} of ${megabytes(limit)} waits on the server. Stop recording soon or the rest may not be kept.`
      : "Recording storage is back: the waiting recording is being uploaded.";
    this.message.setAttribute("role", nearFull ? "alert" : "status");
  }

  async consent(granted) {
    try {
      await call(this.socket, "consent", { consult_id: this.consultId, granted });
      this.consentButton.hidden = granted;
      this.withdrawButton.hidden = !granted;
      this.prompt.classList.remove("asking");
      this.message.textContent = granted ? "You consented to recording." : "You withdrew your consent.";
    } catch (error) {
      this.message.textContent = `Your consent could not be recorded: ${sentence(error)}`;
    }
  }

  async record(action) {
    try {
      await call(this.socket, "record", { consult_id: this.consultId, action });
      this.show(action === "start" ? "recording" : "stopped");
    } catch (error) {
      this.message.textContent = `The recording could not ${action}: ${sentence(error)}`;
    }
  }
}
