// A modal form (transfer, note, close): cancel closes it, submit runs the action, and a
// refusal (a string returned, or one shown later through `refuse`) stays in its problem line.

import { setText } from "./dom.js";

/** onSubmit(form, refuse) returns null when done, else the refusal to show. */
export function modal(dialog, onSubmit) {
  const form = dialog.querySelector("form");
  const problem = dialog.querySelector(".problem");
  const refuse = (text) => setText(problem, text);
  dialog.querySelector("[data-cancel]").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const refusal = onSubmit(form, refuse);
    if (refusal) refuse(refusal);
    else dialog.close();
  });
  return {
    form,
    /** Reset and show it; prepare(form) fills menus and moves the focus. */
    open(prepare) {
      form.reset();
      refuse("");
      prepare(form);
      dialog.showModal();
    },
  };
}
