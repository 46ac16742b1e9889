// Complaint deadlines (超时提醒) on the lead's board: the reminders and missed deadlines the
// supervisor socket sends for the lead's queues, soonest due first, each with its due time
// or an overdue badge, and who holds the complaint. Selecting one watches it. The socket
// sends each alert once, so the board keeps the latest of each conversation's deadlines
// (until its close, when watched, or past the last KEEP).

import { h, syncList } from "../dom.js";
import { clock, tail, timeOf } from "../format.js";

const KEEP = 20;

export function mountDeadlines({ list, empty, onWatch, agentName, t, lang }) {
  const alerts = new Map(); // "conversation|deadline" -> the latest alert frame

  function badgeText(alert, now) {
    const what = t(`deadline.${alert.deadline}`);
    const due = timeOf(alert.due_at);
    if (alert.stage === "missed" || now >= due) return { overdue: true, text: t("deadline.overdue", { what }) };
    return { overdue: false, text: t("deadline.due", { what, time: clock(due, lang) }) };
  }

  function create(alert) {
    const badge = h("span", { class: "due" });
    const who = h("span", { class: "who" });
    const button = h("button", { type: "button", class: "alert" }, badge, who);
    button.addEventListener("click", () => onWatch(alert.conversation_id));
    const el = h("li", {}, button);
    el.refs = { badge, who };
    return el;
  }

  function update(el, alert) {
    const { overdue, text } = badgeText(alert, Date.now());
    el.refs.badge.textContent = text;
    el.refs.badge.classList.toggle("overdue", overdue);
    el.refs.badge.classList.toggle("soon", !overdue);
    el.refs.who.textContent = t("lead.deadline.who", {
      id: tail(alert.conversation_id),
      queue: alert.queue,
      grade: alert.grade || t("lead.none"),
      agent: alert.agent ? agentName(alert.agent) : t("lead.deadline.nobody"),
    });
  }

  function render() {
    const items = [...alerts.values()].sort((a, b) => timeOf(a.due_at) - timeOf(b.due_at));
    syncList(list, items, (a) => `${a.conversation_id}|${a.deadline}`, create, update);
    empty.hidden = items.length > 0;
  }

  return {
    apply(frame) {
      const key = `${frame.conversation_id}|${frame.deadline}`;
      alerts.delete(key);
      alerts.set(key, frame);
      while (alerts.size > KEEP) alerts.delete(alerts.keys().next().value);
      render();
    },
    closed(conversationId) {
      for (const key of [...alerts.keys()]) if (key.startsWith(`${conversationId}|`)) alerts.delete(key);
      render();
    },
    tick: render,
  };
}
