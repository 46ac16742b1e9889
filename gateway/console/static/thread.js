// The selected conversation: who and where the customer is (channel, account, identity),
// its routing facts (queue, priority, grade, SLA deadline, a transfer's note, the WeChat
// reply window), and the whole thread with replies in flight, channel notices and internal
// notes (drawn apart: agents only, never sent to the customer).

import { h, setText, syncList } from "./dom.js";
import { clock, customerName, dateTime, duration, tail, timeOf } from "./format.js";
import { bubble, sideOf } from "./messages.js";

const WECHAT_WINDOW_MS = 48 * 3600 * 1000;
const WINDOW_CODES = new Set(["wechat_window_closing", "wechat_window_closed"]);

/** The WeChat reply window as far as the page can tell: 48 h from the customer's last
 * message, unless a later notice of the channel says it is closing or closed. */
export function wechatWindow(entry, now) {
  if (entry.conversation.channel !== "wechat") return null;
  const lastIn = entry.messages.filter((m) => m.direction === "in" && m.kind !== "event").pop();
  const lastInAt = lastIn ? timeOf(lastIn.sent_at) : null;
  const notice = entry.notices.filter((n) => WINDOW_CODES.has(n.code) && (lastInAt === null || n.at > lastInAt)).pop();
  if (notice && notice.code === "wechat_window_closed") return { open: false };
  if (lastInAt === null) return notice ? { open: true, closesAt: null, detail: notice.detail } : null;
  const closesAt = lastInAt + WECHAT_WINDOW_MS;
  return closesAt > now ? { open: true, closesAt, warned: Boolean(notice) } : { open: false };
}

export function mountThread({ view, emptyState, title, details, list, store, retry, t, lang }) {
  let shownId = null;

  function detailRows(entry) {
    const c = entry.conversation;
    const now = store.now();
    const rows = [
      [t("field.channel"), c.account && c.account !== "default" ? `${c.channel} · ${c.account}` : c.channel],
      [t("field.customer"), c.customer.name ? `${c.customer.name} (${c.customer.id})` : c.customer.id],
      [t("field.queue"), c.queue],
      [t("field.priority"), String(c.priority)],
    ];
    if (c.grade) rows.push([t("field.grade"), c.grade]);
    const sla = c.sla_s || store.queueSla[c.queue]; // a grade's SLA, else the queue's
    if (sla) {
      const due = (timeOf(c.created_at) || 0) + sla * 1000;
      rows.push([t("field.sla"), `${clock(due, lang)} (${t("field.sla_target", { time: duration(sla * 1000, t) })})`]);
    }
    const window = wechatWindow(entry, now);
    if (window) {
      let text = t("wechat.closed");
      if (window.open && window.closesAt) {
        text = t("wechat.open_until", { at: dateTime(window.closesAt, lang), left: duration(window.closesAt - now, t) });
      } else if (window.open) text = window.detail;
      rows.push([t("field.wechat_window"), text, window.open ? (window.warned ? "warn" : "") : "bad"]);
    }
    if (c.transferred_from || c.transfer_note) {
      rows.push([t("field.transfer"), t("offer.transferred", { from: c.transferred_from || "?", note: c.transfer_note || "" })]);
    }
    if (c.leave_message) rows.push([t("field.mode"), t("offer.leave_message")]);
    rows.push([t("field.opened"), dateTime(timeOf(c.created_at) || now, lang)]);
    rows.push([t("field.id"), tail(c.id)]);
    return rows;
  }

  function renderDetails(entry) {
    const rows = detailRows(entry);
    const key = JSON.stringify(rows);
    if (details.dataset.shown === key) return;
    details.dataset.shown = key;
    details.replaceChildren(
      ...rows.map(([term, value, mood]) =>
        h("div", {}, h("dt", { text: term }), h("dd", { class: mood || null, text: value })),
      ),
    );
  }

  function items(entry) {
    const messages = entry.messages.map((m) => ({ key: `m:${m.id}`, at: timeOf(m.sent_at) || 0, message: m }));
    const notices = entry.notices.map((n, i) => ({ key: `n:${i}`, at: n.at, notice: n }));
    const notes = (entry.notes || []).map((n) => ({ key: `note:${n.id}`, at: n.at_ms, note: n }));
    const pending = store.pendingOf(entry.conversation.id).map((p) => ({ key: `p:${p.cmid}`, at: Infinity, pending: p }));
    return [...messages, ...notices, ...notes].sort((a, b) => a.at - b.at).concat(pending);
  }

  function authorOf(m, customer) {
    if (m.direction === "in") return customerName(customer, t);
    if (m.author === "system") return t("thread.system");
    if (store.agent && m.author === store.agent.id) return t("thread.you");
    return m.author || t("thread.agent");
  }

  function create(item) {
    if (item.note) {
      const n = item.note;
      const who = store.agent && n.author.id === store.agent.id ? t("thread.you") : n.author.name;
      return h(
        "li",
        { class: "note", "aria-label": t("note.label") },
        h("p", { class: "meta", text: `${t("note.label")} · ${who} · ${clock(n.at_ms, lang)}` }),
        h("p", { class: "text", text: n.text }),
      );
    }
    if (item.notice) {
      return h("li", { class: "notice" }, h("span", { class: "code", text: item.notice.code }), " ", item.notice.detail);
    }
    const m = item.message || { direction: "out", text: item.pending.text, attachments: [] };
    const body = bubble(m);
    const el = h("li", { class: `message ${sideOf(m)}` }, h("p", { class: "meta" }), body);
    el.refs = { meta: el.firstChild, body, state: null };
    return el;
  }

  function update(el, item) {
    if (item.notice || item.note) return;
    const entry = store.conversations.get(shownId);
    const at = item.message ? timeOf(item.message.sent_at) : item.pending.at;
    const who = item.message ? authorOf(item.message, entry.conversation.customer) : t("thread.you");
    setText(el.refs.meta, `${who} · ${clock(at, lang)}`);
    if (!item.pending) return;
    const p = item.pending;
    el.classList.toggle("pending", p.state === "pending");
    el.classList.toggle("failed", p.state === "failed");
    if (!el.refs.state) {
      el.refs.state = h("p", { class: "state", role: "status" });
      el.append(el.refs.state);
    }
    const shown = `${p.state}|${p.error ? p.error.code + p.error.detail : ""}`;
    if (el.refs.shown === shown) return;
    el.refs.shown = shown;
    if (p.state === "pending") {
      el.refs.state.replaceChildren(t("reply.pending"));
    } else {
      const reason = p.error && p.error.detail ? `${p.error.code}: ${p.error.detail}` : p.error ? p.error.code : "";
      const again = h("button", { type: "button", class: "link", text: t("reply.retry") });
      again.addEventListener("click", () => retry(p.cmid));
      el.refs.state.replaceChildren(h("span", { text: t("reply.refused", { reason }) }), " ", again);
    }
  }

  function render() {
    const entry = store.conversations.get(store.selected);
    view.hidden = !entry;
    emptyState.hidden = Boolean(entry);
    if (!entry) {
      shownId = null;
      return;
    }
    const switched = shownId !== entry.conversation.id;
    shownId = entry.conversation.id;
    if (switched) list.replaceChildren();
    setText(title, customerName(entry.conversation.customer, t));
    renderDetails(entry);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    syncList(list, items(entry), (i) => i.key, create, update);
    if (switched || atBottom) list.scrollTop = list.scrollHeight;
  }

  function tick() {
    const entry = store.conversations.get(store.selected);
    if (entry) renderDetails(entry);
  }

  return { render, tick };
}
