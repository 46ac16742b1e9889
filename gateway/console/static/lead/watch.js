// The conversation a lead watches: read-only and live (the `watching` frame, then each
// `message` and the `closed`), with what a lead may do to it: transfer it to an agent or a
// queue with a note, take it over onto their own agent account, or close it.

import { modal } from "../dialogs.js";
import { h, setText, syncList } from "../dom.js";
import { clock, customerName, dateTime, tail, timeOf } from "../format.js";
import { bubble, sideOf } from "../messages.js";

export function mountWatch({ els, send, requests, board, queues, leadAgent, t, reason, lang, announce, problem }) {
  let watched = null; // {conversation, messages, notes, closed}

  function authorOf(m) {
    if (m.direction === "in") return customerName(watched.conversation.customer, t);
    if (m.author === "system") return t("thread.system");
    return m.author ? board.agentName(m.author) : t("thread.agent");
  }

  function create(item) {
    if (item.note) {
      return h("li", { class: "note" }, h("p", { class: "meta", text: t("lead.notes") }), h("p", { class: "text", text: item.note }));
    }
    const m = item.message;
    const when = timeOf(m.sent_at);
    const meta = `${authorOf(m)} · ${when === null ? "" : clock(when, lang)}`;
    return h("li", { class: `message ${sideOf(m)}` }, h("p", { class: "meta", text: meta }), bubble(m));
  }

  // The wallboard is fresher than the summary the watch began with: a transfer or a take
  // over moves the conversation, and the board says who holds it now.
  function holder() {
    if (watched.closed) return null;
    return board.agents().length ? board.holderOf(watched.conversation.id) : watched.conversation.agent;
  }

  function details() {
    const c = watched.conversation;
    const agent = holder();
    const rows = [
      [t("field.channel"), c.channel],
      [t("field.customer"), c.customer.name ? `${c.customer.name} (${c.customer.id})` : c.customer.id],
      [t("field.queue"), c.queue],
      [t("lead.col.agent"), agent ? board.agentName(agent) : t("lead.none")],
    ];
    if (c.enqueued_ms) rows.push([t("field.opened"), dateTime(c.enqueued_ms, lang)]);
    rows.push([t("field.id"), tail(c.id)]);
    return rows.map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", { text: value })));
  }

  function render() {
    els.view.hidden = !watched;
    els.empty.hidden = Boolean(watched);
    if (!watched) return;
    const c = watched.conversation;
    setText(els.title, customerName(c.customer, t));
    const state = watched.closed
      ? t("lead.watch.closed", { reason: reason(watched.closed) })
      : `${t("lead.watch.readonly")} · ${t(`lead.state.${holder() ? "assigned" : c.state === "assigned" ? "waiting" : c.state}`)}`;
    setText(els.state, state);
    els.details.replaceChildren(...details());
    const items = [
      ...watched.notes.map((note, i) => ({ key: `note:${i}`, note })),
      ...watched.messages.map((message) => ({ key: `m:${message.id}`, message })),
    ];
    const atBottom = els.thread.scrollHeight - els.thread.scrollTop - els.thread.clientHeight < 40;
    syncList(els.thread, items, (i) => i.key, create, () => {});
    if (atBottom) els.thread.scrollTop = els.thread.scrollHeight;
    const off = Boolean(watched.closed);
    els.transfer.disabled = off;
    els.close.disabled = off;
    const own = leadAgent();
    els.takeOver.disabled = off || !own || holder() === own;
    els.takeOver.title = own ? t("lead.take_over_title", { agent: own }) : t("lead.take_over_none");
  }

  /** Ask for an action; its done is announced, its refusal shown in the problems bar. */
  function act(frame) {
    const id = requests.open(frame.type, (done) => {
      announce(t(`lead.done.${done.action}`));
      if (watched && frame.conversation_id === watched.conversation.id && done.action !== "close") {
        send({ type: "watch", conversation_id: watched.conversation.id }); // fresh summary: who holds it now
      }
    }, problem);
    if (!send({ ...frame, request_id: id })) {
      requests.forget(id);
      return false;
    }
    return true;
  }

  const transfer = modal(els.transferDialog, (form) => {
    const to = form.elements.namedItem("to_agent").value;
    const queue = form.elements.namedItem("to_queue").value;
    if (!to && !queue) return t("transfer.need_target");
    const frame = { type: "transfer", conversation_id: watched.conversation.id };
    if (to) frame.to_agent = to;
    if (queue) frame.to_queue = queue;
    const note = form.elements.namedItem("note").value.trim();
    if (note) frame.note = note;
    return act(frame) ? null : t("reply.offline");
  });

  const closing = modal(els.closeDialog, (form) => {
    const frame = { type: "close", conversation_id: watched.conversation.id };
    const why = form.elements.namedItem("reason").value.trim();
    if (why) frame.reason = why;
    return act(frame) ? null : t("reply.offline");
  });

  els.transfer.addEventListener("click", () => transfer.open((form) => {
    const none = h("option", { value: "", text: t("lead.transfer.none") });
    const agents = board.agents().filter((a) => a.id !== holder());
    form.elements.namedItem("to_agent").replaceChildren(none, ...agents.map((a) => h("option", { value: a.id, text: `${a.name || a.id} · ${a.status}` })));
    form.elements.namedItem("to_queue").replaceChildren(none.cloneNode(true), ...queues().map((q) => h("option", { value: q, text: q })));
    form.elements.namedItem("to_agent").focus();
  }));
  els.close.addEventListener("click", () => closing.open((form) => form.elements.namedItem("reason").focus()));
  els.takeOver.addEventListener("click", () => act({ type: "take_over", conversation_id: watched.conversation.id }));
  els.unwatch.addEventListener("click", () => {
    if (watched) send({ type: "unwatch", conversation_id: watched.conversation.id });
  });

  return {
    watch(id) {
      send({ type: "watch", conversation_id: id });
    },
    watchedId: () => (watched ? watched.conversation.id : null),
    /** Frames of the watch: watching, message, closed, unwatched. */
    apply(frame) {
      if (frame.type === "watching") {
        watched = { conversation: frame.conversation, messages: frame.messages, notes: frame.notes || [], closed: null };
      } else if (!watched || frame.conversation_id !== watched.conversation.id) {
        return;
      } else if (frame.type === "message") {
        if (!watched.messages.some((m) => m.id === frame.message.id)) watched.messages.push(frame.message);
      } else if (frame.type === "closed") {
        watched.closed = frame.reason;
      } else if (frame.type === "unwatched") {
        watched = null;
      }
      render();
    },
    render,
  };
}
