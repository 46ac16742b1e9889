// The open conversations, several at once: who, which channel, unread messages, how long
// the customer has waited for an answer and, for a graded complaint, its next deadline's due
// time or an overdue badge. Selecting one opens its thread.

import { h, keyedList, setText } from "./dom.js";
import { clock, customerName, duration, timeOf } from "./format.js";

/** A complaint's next deadline still to meet ({kind, due, overdue}), or null: a missed one
 * first (it stays overdue), else the earliest pending or reminded. */
export function nextDeadline(deadlines, now) {
  const open = (deadlines || []).filter((d) => ["pending", "reminded", "missed"].includes(d.state));
  const missed = open.find((d) => d.state === "missed");
  const next = missed || open.sort((a, b) => timeOf(a.due_at) - timeOf(b.due_at))[0];
  if (!next) return null;
  const due = timeOf(next.due_at);
  return { kind: next.kind, due, overdue: next.state === "missed" || now >= due, reminded: next.state === "reminded" };
}

/** When the customer's unanswered messages began: the first customer message after the
 * last one an agent wrote (the gateway's auto-replies do not answer anyone). */
export function waitingSince(messages) {
  let since = null;
  for (const m of messages) {
    if (m.direction === "out" && m.author !== "system") since = null;
    else if (m.direction === "in" && since === null) since = timeOf(m.sent_at);
  }
  return since;
}

export function mountConversations({ list, empty, store, select, t, lang }) {
  function create(entry) {
    const id = entry.conversation.id;
    const refs = {
      name: h("span", { class: "name" }),
      channel: h("span", { class: "tag" }),
      unread: h("span", { class: "unread" }),
      wait: h("span", { class: "wait" }),
      last: h("span", { class: "last" }),
      due: h("span", { class: "due" }),
    };
    refs.dueLine = h("span", { class: "line" }, refs.due);
    const button = h(
      "button",
      { type: "button", class: "conversation-item" },
      h("span", { class: "line" }, refs.name, refs.unread),
      h("span", { class: "line" }, refs.channel, refs.wait),
      refs.dueLine,
      refs.last,
    );
    button.addEventListener("click", () => select(id));
    const el = h("li", {}, button);
    el.refs = { ...refs, button };
    return el;
  }

  function update(el, entry) {
    const c = entry.conversation;
    const r = el.refs;
    setText(r.name, customerName(c.customer, t));
    setText(r.channel, c.channel);
    setText(r.unread, entry.unread ? String(entry.unread) : "");
    r.unread.hidden = !entry.unread;
    r.unread.setAttribute("aria-label", t("conversations.unread", { n: entry.unread }));
    const since = waitingSince(entry.messages);
    setText(r.wait, since === null ? "" : t("conversations.waiting", { time: duration(store.now() - since, t) }));
    const slaMs = c.sla_s ? c.sla_s * 1000 : null;
    r.wait.classList.toggle("late", since !== null && slaMs !== null && store.now() - since > slaMs);
    const next = nextDeadline(c.deadlines, store.now());
    r.dueLine.hidden = !next;
    if (next) {
      const what = t(`deadline.${next.kind}`);
      setText(r.due, next.overdue ? t("deadline.overdue", { what }) : t("deadline.due", { what, time: clock(next.due, lang) }));
      r.due.classList.toggle("overdue", next.overdue);
      r.due.classList.toggle("soon", !next.overdue && next.reminded);
    }
    const lastMessage = entry.messages[entry.messages.length - 1];
    setText(r.last, lastMessage ? lastMessage.text || (lastMessage.attachments || []).map((a) => a.name).join(", ") : "");
    if (store.selected === c.id) r.button.setAttribute("aria-current", "true");
    else r.button.removeAttribute("aria-current");
  }

  return keyedList({
    parent: list,
    empty,
    items: () => store.sortedConversations(),
    byKey: { get: (key) => store.conversations.get(key) },
    keyOf: (entry) => entry.conversation.id,
    create,
    update,
  });
}
