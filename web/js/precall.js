// The pre-call check: a self-preview, a microphone level meter, camera and microphone pickers,
// and a helpful screen when the browser denies the camera or microphone.
import { h } from "./ui.js";

export class PreCall {
  constructor() {
    this.stream = null;
    this.preview = h("video", { class: "preview", autoplay: true, muted: true, playsinline: true, "aria-label": "Camera preview" });
    this.preview.muted = true;
    this.meter = h("meter", { id: "mic-level", min: "0", max: "1", value: "0" });
    this.camera = h("select", { id: "camera-select", onchange: () => this.open() });
    this.microphone = h("select", { id: "microphone-select", onchange: () => this.open() });
    this.problem = h("div", { class: "problem", role: "alert", hidden: true });
    this.element = h(
      "section",
      { class: "precall", "aria-labelledby": "precall-heading" },
      h("h2", { id: "precall-heading", text: "Check your camera and microphone" }),
      this.preview,
      h("div", { class: "devices" },
        h("label", { for: "camera-select", text: "Camera" }), this.camera,
        h("label", { for: "microphone-select", text: "Microphone" }), this.microphone,
        h("label", { for: "mic-level", text: "Microphone level" }), this.meter),
      this.problem,
    );
  }

  async open() {
    const constraints = {
      video: this.camera.value ? { deviceId: { exact: this.camera.value } } : true,
      audio: this.microphone.value ? { deviceId: { exact: this.microphone.value } } : true,
    };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      this.stop();
      this.stream = stream;
      this.problem.hidden = true;
      this.preview.srcObject = stream;
      await this.listDevices();
      this.listen(stream);
      return stream;
    } catch (error) {
      this.explain(error);
      return null;
    }
  }

  async listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [select, kind, track] of [
      [this.camera, "videoinput", this.stream.getVideoTracks()[0]],
      [this.microphone, "audioinput", this.stream.getAudioTracks()[0]],
    ]) {
      const current = track ? track.getSettings().deviceId : "";
      select.replaceChildren(
        ...devices.filter((d) => d.kind === kind).map((d, i) =>
          h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`)),
      );
    }
  }

  listen(stream) {
    if (!stream.getAudioTracks().length) return;
    this.audio?.close();
    this.audio = new AudioContext();
    const analyser = this.audio.createAnalyser();
    this.audio.createMediaStreamSource(stream).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    const tick = () => {
      if (this.audio.state === "closed") return;
      analyser.getByteTimeDomainData(samples);
      const peak = samples.reduce((max, s) => Math.max(max, Math.abs(s - 128)), 0) / 128;
      this.meter.value = peak;
      requestAnimationFrame(tick);
    };
    tick();
  }

  explain(error) {
    const denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
    this.problem.replaceChildren(
      h("h3", { text: denied ? "Your browser blocked the camera and microphone" : "No camera or microphone could be opened" }),
      h("p", { text: denied
        ? "Allow pawhub to use them: click the camera icon in the address bar, choose Allow, then reload this page."
        : "Check that a camera and microphone are connected and not used by another application, then reload this page." }),
      h("p", { text: "You can still join and chat while you fix it." }),
    );
    this.problem.hidden = false;
  }

  /** Hand the stream to the call: the meter stops, the tracks live on. */
  handOver() {
    this.audio?.close();
    const stream = this.stream;
    this.stream = null;
    return stream;
  }

  stop() {
    this.stream?.getTracks().forEach((track) => track.stop());
  }
}
