// One message drawn as a bubble, for the agent's thread and the lead's watch pane alike:
// its text, its attachments (images inline, other files as links) and its kind when it is
// not plain text. Text goes in through textContent only (dom.js).

import { h } from "./dom.js";
import { size } from "./format.js";

export function attachmentView(a) {
  const label = [a.name, size(a.size)].filter(Boolean).join(" · ");
  if (!a.url) return h("li", { class: "attachment", text: label });
  const link = h("a", { href: a.url, target: "_blank", rel: "noopener noreferrer", text: label });
  if ((a.content_type || "").startsWith("image/")) {
    const image = h("img", { src: a.url, alt: a.name, loading: "lazy" });
    return h("li", { class: "attachment image" }, h("a", { href: a.url, target: "_blank", rel: "noopener noreferrer" }, image), link);
  }
  return h("li", { class: "attachment" }, link);
}

/** The bubble of a message ({text, attachments, kind}). */
export function bubble(m) {
  const body = h("div", { class: "bubble" });
  if (m.text) body.append(h("p", { class: "text", text: m.text }));
  if (m.attachments && m.attachments.length) body.append(h("ul", { class: "attachments" }, ...m.attachments.map(attachmentView)));
  if (m.kind && m.kind !== "text") body.append(h("p", { class: "kind", text: m.kind }));
  return body;
}

/** The class of a message's row: the customer's (in), an agent's (out) or the gateway's. */
export function sideOf(m) {
  return m.direction === "in" ? "in" : m.author === "system" ? "system" : "out";
}
