// The customers' ratings of the agent's closed conversations (the csat frame), newest first,
// for this session: the score, who rated, and their comment. The gateway keeps them too
// (the admin API); here the agent sees them come in.

import { h } from "./dom.js";
import { customerName, tail } from "./format.js";

export function mountRatings({ section, list, store, t }) {
  function render() {
    section.hidden = store.ratings.length === 0;
    list.replaceChildren(
      ...store.ratings.map((r) => {
        const who = r.conversation ? customerName(r.conversation.customer, t) : tail(r.conversationId);
        const score = h("span", { class: "score", text: t("ratings.score", { score: r.score, scale: r.scale }) });
        score.dataset.low = String(r.score <= 2);
        const item = h("li", { class: "rating" }, score, " ", h("span", { class: "name", text: who }));
        if (r.comment) item.append(h("span", { class: "comment", text: r.comment }));
        return item;
      }),
    );
  }
  return { render, tick() {} };
}
