// A lead's actions each carry a request_id; the gateway answers with `done` or an `error`
// naming it (docs/protocol.md, "The supervisor socket"). This keeps what to do with either.

let counter = 0;

export class Requests {
  constructor() {
    this.waiting = new Map(); // request_id -> {onDone, onError}
  }

  /** A fresh request id whose answer goes to onDone(frame) or onError(frame). */
  open(prefix, onDone, onError) {
    counter += 1;
    const id = `${prefix}-${Date.now().toString(36)}-${counter}`;
    this.waiting.set(id, { onDone, onError });
    return id;
  }

  forget(id) {
    this.waiting.delete(id);
  }

  /** Hand a `done`, `search_results`, `qa_results` or `error` frame to its request; false when it answers none. */
  settle(frame) {
    const waiting = frame.request_id ? this.waiting.get(frame.request_id) : null;
    if (!waiting) return false;
    this.waiting.delete(frame.request_id);
    if (frame.type === "error") waiting.onError(frame);
    else waiting.onDone(frame);
    return true;
  }
}
