// Canned replies (快捷回复) in the reply box: typing "/" at the start of a word opens the
// list of the conversation's canned replies, and what follows the "/" searches it (title,
// id and text). Arrow keys move, Enter or a click inserts the reply with {customer_name} and
// {agent_name} filled in, in place of the "/search"; Esc closes the list and keeps the text.
// The substitution is the one of the Python client library (gateway.client.expand_canned).

import { h } from "./dom.js";

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const TRIGGER = /(^|\s)\/([^\s/]*)$/;

/** A canned reply's text with the two placeholders filled in (a missing name is empty);
 * anything else in braces is left as it is. */
export function expandCanned(text, customerName, agentName) {
  const values = { customer_name: customerName || "", agent_name: agentName || "" };
  return text.replace(PLACEHOLDER, (whole, name) => (name in values ? values[name] : whole));
}

/** The replies whose title, id or text holds the query (case-insensitive), in their order. */
export function searchCanned(replies, query) {
  const q = query.toLowerCase();
  return replies.filter((c) => !q || [c.title, c.id, c.text].some((s) => String(s || "").toLowerCase().includes(q)));
}

export function mountCanned({ form, textarea, list, store, t }) {
  let shown = []; // the replies listed
  let active = 0;
  let trigger = null; // {start, end}: the "/search" in the textarea

  function close() {
    trigger = null;
    shown = [];
    list.hidden = true;
    list.replaceChildren();
    textarea.setAttribute("aria-expanded", "false");
    textarea.removeAttribute("aria-activedescendant");
  }

  function draw() {
    list.replaceChildren(
      ...(shown.length
        ? shown.map((c, i) =>
            h(
              "li",
              { id: `canned-${i}`, role: "option", "aria-selected": i === active ? "true" : "false", class: i === active ? "active" : null, onmousedown: (e) => { e.preventDefault(); insert(i); } },
              h("strong", { text: c.title }),
              " ",
              h("span", { class: "muted", text: c.text }),
            ),
          )
        : [h("li", { class: "muted", role: "option", "aria-disabled": "true", text: t("canned.none") })]),
    );
    list.hidden = false;
    textarea.setAttribute("aria-expanded", "true");
    if (shown.length) textarea.setAttribute("aria-activedescendant", `canned-${active}`);
    else textarea.removeAttribute("aria-activedescendant");
  }

  function update() {
    const entry = store.conversations.get(store.selected);
    const before = textarea.value.slice(0, textarea.selectionStart);
    const match = entry && textarea.selectionStart === textarea.selectionEnd ? TRIGGER.exec(before) : null;
    const replies = entry ? store.cannedFor(entry.conversation.queue) : [];
    if (!match || !replies.length) {
      if (trigger) close();
      return;
    }
    const start = before.length - match[2].length - 1;
    trigger = { start, end: before.length };
    shown = searchCanned(replies, match[2]);
    active = Math.min(active, Math.max(0, shown.length - 1));
    draw();
  }

  function insert(index) {
    const reply = shown[index];
    const entry = store.conversations.get(store.selected);
    if (!reply || !entry || !trigger) return;
    const agent = store.agent ? store.agent.shown_as || store.agent.name || "" : "";
    const text = expandCanned(reply.text, entry.conversation.customer.name, agent);
    const value = textarea.value;
    textarea.value = value.slice(0, trigger.start) + text + value.slice(trigger.end);
    const caret = trigger.start + text.length;
    textarea.setSelectionRange(caret, caret);
    close();
    textarea.dispatchEvent(new Event("input", { bubbles: true })); // keeps the draft
  }

  textarea.addEventListener("input", () => {
    active = 0; // a new search starts at its first reply
    update();
  });
  textarea.addEventListener("blur", () => close());

  // Capture on the form: the list's keys come before the reply box's own (Enter sends).
  form.addEventListener(
    "keydown",
    (event) => {
      if (!trigger || event.target !== textarea || event.isComposing) return;
      const keys = { ArrowDown: 1, ArrowUp: -1 };
      if (event.key in keys) {
        if (shown.length) active = (active + keys[event.key] + shown.length) % shown.length;
        draw();
      } else if (event.key === "Enter" && !event.shiftKey) {
        if (shown.length) insert(active);
        else close();
      } else if (event.key === "Escape") {
        close();
      } else return;
      event.preventDefault();
      event.stopPropagation();
    },
    true,
  );

  textarea.setAttribute("aria-autocomplete", "list");
  textarea.setAttribute("aria-controls", list.id);
  close();
  return { render: () => { if (trigger && !store.conversations.has(store.selected)) close(); } };
}
