// What an agent does to the selected conversation besides replying: transfer it to an agent
// or a queue with a note, add an internal note (agents only), close it, with a close reason
// chosen from the configured list when the gateway has one.

import { modal } from "./dialogs.js";
import { h, setText } from "./dom.js";

export function mountActions({ transferButton, noteButton, closeButton, dialog, noteDialog, closeDialog, store, send, t, reason }) {
  const form = dialog.querySelector("form");
  const agentInput = form.elements.namedItem("to_agent");
  const queueInput = form.elements.namedItem("to_queue");
  const noteInput = form.elements.namedItem("note");
  const problem = dialog.querySelector(".problem");

  const note = modal(noteDialog, (noteForm) => {
    const text = noteForm.elements.namedItem("text").value.trim();
    if (!text) return t("note.empty");
    if (!send({ type: "note", conversation_id: store.selected, text })) return t("reply.offline");
    return null;
  });
  noteButton.addEventListener("click", () => note.open(() => noteDialog.querySelector("textarea").focus()));

  const reasonSelect = closeDialog.querySelector("select");
  const closing = modal(closeDialog, (closeForm) => {
    const id = store.selected;
    const chosen = closeForm.elements.namedItem("reason").value;
    if (!id) return null;
    if (!send({ type: "close", conversation_id: id, reason: chosen })) return t("reply.offline");
    store.busy(id);
    return null;
  });

  transferButton.addEventListener("click", () => {
    form.reset();
    setText(problem, "");
    dialog.showModal();
    agentInput.focus();
  });

  dialog.querySelector("[data-cancel]").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = store.selected;
    const toAgent = agentInput.value.trim();
    const toQueue = queueInput.value.trim();
    if (!toAgent && !toQueue) {
      setText(problem, t("transfer.need_target"));
      return;
    }
    const frame = { type: "transfer", conversation_id: id };
    if (toAgent) frame.to_agent = toAgent;
    if (toQueue) frame.to_queue = toQueue;
    if (noteInput.value.trim()) frame.note = noteInput.value.trim();
    if (!send(frame)) {
      setText(problem, t("reply.offline"));
      return;
    }
    store.busy(id);
    dialog.close();
  });

  closeButton.addEventListener("click", () => {
    const id = store.selected;
    if (!id) return;
    if (store.closeReasons.length) {
      reasonSelect.replaceChildren(...store.closeReasons.map((r) => h("option", { value: r, text: reason(r) })));
      closing.open(() => reasonSelect.focus());
    } else if (send({ type: "close", conversation_id: id })) store.busy(id);
  });

  function render() {
    const entry = store.conversations.get(store.selected);
    const off = !entry || entry.busy;
    transferButton.disabled = off;
    noteButton.disabled = off;
    closeButton.disabled = off;
  }

  return { render };
}
