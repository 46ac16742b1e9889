// The reply box of the selected conversation. Enter sends, Shift+Enter is a new line (and
// Enter that confirms an input method's composition, as when typing Chinese, is left to
// it). What is typed is kept per conversation in the tab, so switching conversations, a
// reconnect or a reload never loses a half-written reply.

import { setText } from "./dom.js";

export function mountReply({ form, textarea, button, hint, store, drafts, sendReply, t }) {
  let shownId = null;

  textarea.addEventListener("input", () => {
    if (shownId) drafts().set(shownId, textarea.value);
    setText(hint, t("reply.hint"));
  });

  textarea.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    form.requestSubmit();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textarea.value;
    if (!shownId || !text.trim()) return;
    if (!sendReply(shownId, text)) {
      setText(hint, t("reply.offline"));
      return;
    }
    textarea.value = "";
    drafts().set(shownId, "");
    setText(hint, t("reply.hint"));
  });

  function render() {
    const id = store.conversations.has(store.selected) ? store.selected : null;
    if (id !== shownId) {
      shownId = id;
      textarea.value = id ? drafts().get(id) : "";
    }
    textarea.disabled = !id;
    button.disabled = !id;
  }

  return { render, focus: () => textarea.focus() };
}
