// What an agent does to the selected conversation besides replying: transfer it to an agent
// or a queue with a note, close it. Internal notes wait for their server support.

import { setText } from "./dom.js";

export function mountActions({ transferButton, noteButton, closeButton, dialog, store, send, t }) {
  const form = dialog.querySelector("form");
  const agentInput = form.elements.namedItem("to_agent");
  const queueInput = form.elements.namedItem("to_queue");
  const noteInput = form.elements.namedItem("note");
  const problem = dialog.querySelector(".problem");

  noteButton.disabled = true;

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
    if (id && send({ type: "close", conversation_id: id })) store.busy(id);
  });

  function render() {
    const entry = store.conversations.get(store.selected);
    const off = !entry || entry.busy;
    transferButton.disabled = off;
    closeButton.disabled = off;
  }

  return { render };
}
