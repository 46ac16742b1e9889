// What the workspace knows: the agent, the offers, the open conversations and the replies
// in flight, built from the server's frames. The welcome of each connection is the
// authority (docs/protocol.md, "Ordering"): the set of conversations is replaced by it, and
// only what the page added itself (older messages, unread counts, replies not yet
// acknowledged) is carried over. Views listen to "change" and draw from here.

import { timeOf } from "./format.js";

const OFFER_GRACE_MS = 5000; // an expired offer lingers this long for its revoke to come
const RATINGS_KEPT = 10;

export class Store extends EventTarget {
  constructor(now = () => Date.now()) {
    super();
    this.now = now;
    this.agent = null;
    this.statusReason = null;
    this.offers = new Map(); // offer_id -> {offerId, conversation, expiresAt, accepting}
    this.conversations = new Map(); // id -> {conversation, messages, unread, notices}
    this.pending = new Map(); // client_msg_id -> {conversationId, text, state, error, at}
    this.selected = null;
    this.cannedReplies = []; // from the welcome: [{id, title, text, queues}]
    this.closeReasons = []; // from the welcome; empty: a close needs no reason
    this.queueSla = {}; // queue -> SLA seconds, for conversations without their own
    this.watching = () => true; // whether the agent is looking at the selected thread
    this.ratings = []; // the customers' ratings of closed conversations, newest first (csat)
    this.recentlyClosed = new Map(); // id -> conversation, so that a later rating names it
  }

  changed(what, detail = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, ...detail } }));
  }

  // Frames.

  apply(frame) {
    const handler = HANDLERS[frame.type];
    if (handler) handler.call(this, frame);
    else console.info("console: ignoring frame", frame.type);
  }

  onWelcome(frame) {
    const before = this.conversations;
    this.agent = frame.agent;
    this.statusReason = null;
    this.cannedReplies = frame.canned_replies || [];
    this.closeReasons = frame.close_reasons || [];
    this.queueSla = frame.queue_sla_s || {};
    const notes = frame.notes || {};
    this.offers = new Map(); // pending offers are re-sent after the welcome
    this.conversations = new Map();
    for (const conversation of frame.conversations) {
      const old = before.get(conversation.id);
      const entry = this.entryOf(conversation, old, notes[conversation.id]);
      if (old) {
        const seen = new Set(old.messages.map((m) => m.id));
        entry.unread = old.unread + entry.messages.filter((m) => m.direction === "in" && !seen.has(m.id)).length;
      }
      this.conversations.set(conversation.id, entry);
    }
    for (const [cmid, reply] of this.pending) {
      if (!this.conversations.has(reply.conversationId)) {
        reply.state = "failed";
        reply.error = { code: "not_yours", detail: "" };
      }
      reply.resend = reply.state === "pending";
      this.pending.set(cmid, reply);
    }
    if (!this.conversations.has(this.selected)) this.selected = null;
    this.changed("welcome");
  }

  onOffer(frame) {
    this.offers.set(frame.offer_id, {
      offerId: frame.offer_id,
      conversation: frame.conversation,
      notes: frame.notes || [],
      expiresAt: this.now() + frame.expires_in_s * 1000,
      accepting: false,
    });
    this.changed("offer", { offerId: frame.offer_id, conversation: frame.conversation });
  }

  onOfferRevoked(frame) {
    const offer = this.offers.get(frame.offer_id);
    this.offers.delete(frame.offer_id);
    this.changed("offer_revoked", { offer, reason: frame.reason });
  }

  onAssigned(frame) {
    const conversation = frame.conversation;
    let accepted = false;
    for (const [id, offer] of this.offers) {
      if (offer.conversation.id === conversation.id) {
        accepted = accepted || offer.accepting;
        this.offers.delete(id);
      }
    }
    const entry = this.entryOf(conversation, this.conversations.get(conversation.id), frame.notes);
    this.conversations.set(conversation.id, entry);
    if (accepted || this.selected === null) this.selected = conversation.id;
    this.changed("assigned", { conversationId: conversation.id });
  }

  onMessage(frame) {
    const entry = this.conversations.get(frame.conversation_id);
    if (!entry || entry.messages.some((m) => m.id === frame.message.id)) return;
    entry.messages.push(frame.message);
    const looking = this.selected === frame.conversation_id && this.watching();
    if (frame.message.direction === "in" && !looking) entry.unread += 1;
    this.changed("message", { conversationId: frame.conversation_id, message: frame.message, entry });
  }

  onReplyAck(frame) {
    const reply = this.pending.get(frame.client_msg_id);
    if (!reply) return;
    this.pending.delete(frame.client_msg_id);
    const entry = this.conversations.get(reply.conversationId);
    if (entry && !entry.messages.some((m) => m.id === frame.message_id)) {
      entry.messages.push({
        id: frame.message_id,
        direction: "out",
        text: reply.text,
        // The gateway's time: the customer's messages carry its clock, not this browser's.
        sent_at: frame.sent_at || new Date(reply.at).toISOString(),
        attachments: [],
        kind: "text",
        author: this.agent ? this.agent.id : null,
      });
    }
    this.changed("reply_ack", { conversationId: reply.conversationId });
  }

  onClosed(frame) {
    const entry = this.conversations.get(frame.conversation_id);
    this.conversations.delete(frame.conversation_id);
    for (const [cmid, reply] of this.pending) {
      if (reply.conversationId === frame.conversation_id) this.pending.delete(cmid);
    }
    if (this.selected === frame.conversation_id) this.selected = null;
    if (entry) {
      this.recentlyClosed.set(frame.conversation_id, entry.conversation);
      if (this.recentlyClosed.size > RATINGS_KEPT) this.recentlyClosed.delete(this.recentlyClosed.keys().next().value);
    }
    this.changed("closed", { conversationId: frame.conversation_id, entry, reason: frame.reason });
  }

  // A rating comes after the close, once: kept for the session, the newest few.
  onCsat(frame) {
    const rating = {
      conversationId: frame.conversation_id,
      conversation: this.recentlyClosed.get(frame.conversation_id) || null,
      score: frame.score,
      scale: frame.scale || 5,
      comment: frame.comment || null,
      at: this.now(),
    };
    this.ratings = [rating, ...this.ratings].slice(0, RATINGS_KEPT);
    this.changed("csat", { rating });
  }

  onNotice(frame) {
    const entry = this.conversations.get(frame.conversation_id);
    if (!entry) return;
    entry.notices.push({ code: frame.code, detail: frame.detail, at: this.now() });
    this.changed("notice", { conversationId: frame.conversation_id, entry });
  }

  /** A complaint's deadline reminded or missed: its state in the conversation's deadlines,
   * which the list's due badge shows. */
  onDeadline(frame) {
    const entry = this.conversations.get(frame.conversation_id);
    if (!entry) return;
    const deadline = (entry.conversation.deadlines || []).find((d) => d.kind === frame.deadline);
    if (deadline) deadline.state = frame.stage === "missed" ? "missed" : "reminded";
    this.changed("deadline", { conversationId: frame.conversation_id, entry, frame });
  }

  onNote(frame) {
    const entry = this.conversations.get(frame.conversation_id);
    if (!entry || entry.notes.some((n) => n.id === frame.note.id)) return;
    entry.notes.push(frame.note);
    this.changed("note", { conversationId: frame.conversation_id, entry });
  }

  onHistory(frame) {
    const entry = this.conversations.get(frame.conversation_id);
    if (!entry) return;
    entry.history = frame.conversations;
    this.changed("history", { conversationId: frame.conversation_id, entry });
  }

  onStatus(frame) {
    if (this.agent) this.agent.status = frame.status;
    this.statusReason = frame.reason || null;
    this.changed("status");
  }

  onError(frame) {
    if (frame.client_msg_id && this.pending.has(frame.client_msg_id)) {
      const reply = this.pending.get(frame.client_msg_id);
      reply.state = "failed";
      reply.error = { code: frame.code, detail: frame.detail };
      this.changed("reply_failed", { conversationId: reply.conversationId, error: frame });
      return;
    }
    const offer = frame.offer_id ? this.offers.get(frame.offer_id) : null;
    if (offer) {
      if (frame.code === "unknown_offer" || frame.code === "not_yours") this.offers.delete(frame.offer_id);
      else offer.accepting = false;
    }
    const entry = frame.conversation_id ? this.conversations.get(frame.conversation_id) : null;
    if (entry) entry.busy = false;
    this.changed("error", { error: frame });
  }

  // What the agent does (the page sends the frame, then records it here).

  select(conversationId) {
    this.selected = this.conversations.has(conversationId) ? conversationId : null;
    const entry = this.conversations.get(this.selected);
    if (entry) entry.unread = 0;
    this.changed("select");
  }

  markRead() {
    const entry = this.conversations.get(this.selected);
    if (entry && entry.unread) {
      entry.unread = 0;
      this.changed("read");
    }
  }

  accepting(offerId) {
    const offer = this.offers.get(offerId);
    if (offer) offer.accepting = true;
    this.changed("accepting");
  }

  declined(offerId) {
    this.offers.delete(offerId);
    this.changed("declined");
  }

  replySent(cmid, conversationId, text) {
    this.pending.set(cmid, { conversationId, text, state: "pending", error: null, at: this.now() });
    this.changed("reply_sent", { conversationId });
  }

  replyRetried(cmid) {
    const reply = this.pending.get(cmid);
    if (reply) Object.assign(reply, { state: "pending", error: null, resend: false });
    this.changed("reply_sent", { conversationId: reply && reply.conversationId });
  }

  busy(conversationId) {
    const entry = this.conversations.get(conversationId);
    if (entry) entry.busy = true;
    this.changed("busy");
  }

  /** Offers past their time and their grace, in case the revoke was lost with a socket. */
  dropExpiredOffers() {
    const limit = this.now() - OFFER_GRACE_MS;
    let dropped = false;
    for (const [id, offer] of this.offers) {
      if (offer.expiresAt < limit) {
        this.offers.delete(id);
        dropped = true;
      }
    }
    if (dropped) this.changed("offers_expired");
  }

  // Reading.

  sortedConversations() {
    return [...this.conversations.values()].sort(
      (a, b) => (timeOf(a.conversation.created_at) || 0) - (timeOf(b.conversation.created_at) || 0),
    );
  }

  sortedOffers() {
    return [...this.offers.values()].sort((a, b) => a.expiresAt - b.expiresAt);
  }

  pendingOf(conversationId) {
    return [...this.pending.entries()]
      .filter(([, reply]) => reply.conversationId === conversationId)
      .map(([cmid, reply]) => ({ cmid, ...reply }));
  }

  /** The canned replies offered in a conversation of this queue. */
  cannedFor(queue) {
    return this.cannedReplies.filter((c) => !c.queues || !c.queues.length || c.queues.includes(queue));
  }

  entryOf(conversation, old, notes) {
    const fresh = conversation.messages || [];
    const ids = new Set(fresh.map((m) => m.id));
    const first = fresh.length ? timeOf(fresh[0].sent_at) : Infinity;
    // Keep what the page had from before the welcome's window of recent messages.
    const older = old ? old.messages.filter((m) => !ids.has(m.id) && timeOf(m.sent_at) <= first) : [];
    return {
      conversation,
      messages: [...older, ...fresh],
      unread: old ? old.unread : 0,
      notices: old ? old.notices : [],
      notes: notes || (old ? old.notes : []),
      history: old ? old.history : null, // the customer's earlier conversations, once asked
      busy: false,
    };
  }
}

const HANDLERS = {
  welcome: Store.prototype.onWelcome,
  offer: Store.prototype.onOffer,
  offer_revoked: Store.prototype.onOfferRevoked,
  assigned: Store.prototype.onAssigned,
  message: Store.prototype.onMessage,
  reply_ack: Store.prototype.onReplyAck,
  closed: Store.prototype.onClosed,
  notice: Store.prototype.onNotice,
  deadline: Store.prototype.onDeadline,
  csat: Store.prototype.onCsat,
  note: Store.prototype.onNote,
  history: Store.prototype.onHistory,
  status: Store.prototype.onStatus,
  error: Store.prototype.onError,
};
