// The agent socket (docs/protocol.md): hello, welcome, frames, and reconnecting by itself
// with exponential backoff and jitter. It never queues frames while disconnected: send()
// says whether a frame left, so the page always knows what reached the gateway.

export const PROTOCOL = 1;
export const CLOSE_BAD_TOKEN = 4401;
export const CLOSE_REPLACED = 4409;
export const CLOSE_UNSUPPORTED = 4400;
const CLOSE_STALE = 4000; // ours: the socket went quiet, start again
const FINAL = new Set([CLOSE_BAD_TOKEN, CLOSE_REPLACED, CLOSE_UNSUPPORTED]);

const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 30000;
const WELCOME_TIMEOUT_MS = 15000;
const PING_EVERY_MS = 15000;
const QUIET_LIMIT_MS = 45000;

/** The wait before reconnect attempt n (0-based): 0.5 s doubling to 30 s, each wait drawn
 * between half and all of its step, so a restarted gateway is not hit by every agent at once. */
export function backoffDelay(attempt, random = Math.random) {
  const step = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

function socketUrl(path, pageUrl) {
  const url = new URL(path, pageUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export function agentSocketUrl(pageUrl = location.href) {
  return socketUrl("../agent/ws", pageUrl);
}

/** Team leads' socket: the same hello, welcome and close codes as the agent's. */
export function supervisorSocketUrl(pageUrl = location.href) {
  return socketUrl("../supervisor/ws", pageUrl);
}

/**
 * Events: "state" {state: connecting|open|waiting|stopped, attempt, retryInMs},
 * "frame" {frame} for every server frame (the welcome included), and "stopped"
 * {code, error} when the gateway closed for good (4401, 4409, 4400 or an unknown protocol).
 */
export class Connection extends EventTarget {
  constructor(url, token) {
    super();
    this.url = url;
    this.token = token;
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.welcomed = false;
    this.lastError = null;
    this.timers = {};
    this.onOnline = () => { if (this.state === "waiting") this.open(); };
  }

  start() {
    window.addEventListener("online", this.onOnline);
    this.open();
  }

  stop() {
    window.removeEventListener("online", this.onOnline);
    this.clearTimers();
    this.setState("stopped");
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "signed out");
    }
  }

  get isOpen() {
    return this.state === "open" && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  open() {
    this.clearTimers();
    this.welcomed = false;
    this.lastError = null;
    this.setState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token: this.token, protocol: PROTOCOL }));
    ws.onmessage = (event) => this.onMessage(ws, event);
    ws.onclose = (event) => this.onClose(ws, event);
    this.timers.welcome = setTimeout(() => ws.close(CLOSE_STALE, "no welcome"), WELCOME_TIMEOUT_MS);
  }

  onMessage(ws, event) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      console.warn("console: a frame that is not JSON", event.data);
      return;
    }
    this.lastFrameAt = Date.now();
    if (frame.type === "error" && !this.welcomed) {
      this.lastError = frame; // the hello was refused: the close that follows reports it
      return;
    }
    if (frame.type === "welcome") {
      if (frame.protocol !== PROTOCOL) {
        this.finish(CLOSE_UNSUPPORTED, { code: "unsupported_protocol", detail: `protocol ${frame.protocol}` });
        return;
      }
      // A second welcome on the same socket is the gateway resyncing: the store replaces
      // its state, and the socket already has its keep-alive.
      if (!this.welcomed) this.keepAlive(ws);
      this.welcomed = true;
      this.attempt = 0;
      clearTimeout(this.timers.welcome);
      this.setState("open");
    }
    this.dispatchEvent(new CustomEvent("frame", { detail: { frame } }));
  }

  /** Browsers hide websocket pings, and a half-open socket may never fire close: ping with the
   * protocol's own frame and start again when nothing at all came back for a while. */
  keepAlive(ws) {
    this.timers.ping = setInterval(() => {
      if (ws !== this.ws) return;
      if (Date.now() - this.lastFrameAt > QUIET_LIMIT_MS) ws.close(CLOSE_STALE, "quiet");
      else ws.send(JSON.stringify({ type: "ping" }));
    }, PING_EVERY_MS);
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearTimers();
    if (FINAL.has(event.code)) {
      this.finish(event.code, this.lastError);
      return;
    }
    const retryInMs = backoffDelay(this.attempt);
    this.attempt += 1;
    this.setState("waiting", { retryInMs, code: event.code });
    this.timers.retry = setTimeout(() => this.open(), retryInMs);
  }

  finish(code, error) {
    window.removeEventListener("online", this.onOnline);
    this.clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "stopped");
    }
    this.setState("stopped", { code });
    this.dispatchEvent(new CustomEvent("stopped", { detail: { code, error } }));
  }

  clearTimers() {
    clearTimeout(this.timers.welcome);
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.ping);
    this.timers = {};
  }

  setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, attempt: this.attempt, ...extra } }));
  }
}
