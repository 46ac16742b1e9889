// What both views (the agent's and the lead's) show about the socket and about refusals: the
// connection line's text, and the problems bar, which keeps the last three with a dismiss.

import { duration } from "./format.js";
import { h, setText } from "./dom.js";

const STATE_KEYS = { open: "conn.open", waiting: "conn.waiting", stopped: "conn.stopped" };

export function showConnection(el, detail, t) {
  el.dataset.state = detail.state;
  const key = STATE_KEYS[detail.state] || "conn.connecting";
  setText(el, t(key, { time: duration((detail.retryInMs || 0) + 999, t) }));
}

export function addProblem(box, text, t) {
  const dismiss = h("button", { type: "button", class: "link", text: "×", "aria-label": t("problems.dismiss") });
  const line = h("p", { text }, " ", dismiss);
  dismiss.addEventListener("click", () => line.remove());
  box.append(line);
  while (box.children.length > 3) box.firstElementChild.remove();
}
