// Sound and desktop notifications, only once the agent opted in (browsers allow sound and
// notifications only after a gesture, and an unasked beep is rude). The beep is made with
// WebAudio, so no sound file is shipped; the desktop notification shows only while the
// tab is hidden, when the page itself cannot be seen.

const BEEP_HZ = 880;
const BEEP_S = 0.18;

export class Alerts {
  constructor(storage) {
    this.storage = storage;
    this.enabled = storage.get("alerts") === "on";
    this.audio = null;
  }

  /** Called from the opt-in control's own click: the gesture browsers ask for. */
  async setEnabled(on) {
    this.enabled = on;
    this.storage.set("alerts", on ? "on" : null);
    if (!on) return;
    this.ensureAudio();
    if ("Notification" in window && Notification.permission === "default") {
      try {
        await Notification.requestPermission();
      } catch {
        // an old browser's callback form, or refused: sound only
      }
    }
  }

  /** After a reload the preference is kept, but audio needs a new gesture: any click. */
  resumeOnGesture() {
    const resume = () => {
      if (this.enabled) this.ensureAudio();
    };
    window.addEventListener("pointerdown", resume, { once: true });
    window.addEventListener("keydown", resume, { once: true });
  }

  ensureAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!this.audio) this.audio = new Context();
    if (this.audio.state === "suspended") this.audio.resume().catch(() => {});
  }

  beep() {
    if (!this.enabled || !this.audio || this.audio.state !== "running") return;
    const ctx = this.audio;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = BEEP_HZ;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.25, ctx.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + BEEP_S);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + BEEP_S);
  }

  /** A beep, and a desktop notification when the tab is hidden. */
  alert(title, body, tag) {
    if (!this.enabled) return;
    this.beep();
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const note = new Notification(title, { body, tag });
      note.onclick = () => {
        window.focus();
        note.close();
      };
    } catch {
      // some browsers allow notifications only from a service worker
    }
  }
}
