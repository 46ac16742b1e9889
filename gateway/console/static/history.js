// The customer's earlier conversations (熟客): asked for once per conversation when it is
// first shown, drawn under its details: when each closed, on which channel, who held it, the
// close reason and its last words, so the agent knows the customer before answering.

import { h, setText } from "./dom.js";
import { dateTime } from "./format.js";

export function mountHistory({ section, list, empty, store, send, t, reason, lang }) {
  function ask(entry) {
    if (entry.history !== null || entry.historyAsked) return;
    if (send({ type: "history", conversation_id: entry.conversation.id })) entry.historyAsked = true;
  }

  function line(past) {
    const who = past.agent_name || past.agent || t("history.nobody");
    const facts = [dateTime(past.closed_ms, lang), past.channel, who, t("history.messages", { n: past.messages })];
    if (past.close_reason) facts.push(reason(past.close_reason));
    return h(
      "li",
      {},
      h("span", { class: "facts", text: facts.join(" · ") }),
      past.last_text ? h("q", { class: "last", text: past.last_text }) : null,
    );
  }

  function render() {
    const entry = store.conversations.get(store.selected);
    section.hidden = !entry;
    if (!entry) return;
    ask(entry);
    const key = `${entry.conversation.id}|${JSON.stringify(entry.history)}`;
    if (list.dataset.shown === key) return;
    list.dataset.shown = key;
    const found = entry.history || [];
    list.replaceChildren(...found.map(line));
    setText(empty, entry.history === null ? t("history.loading") : t("history.empty"));
    empty.hidden = found.length > 0;
  }

  return { render };
}
