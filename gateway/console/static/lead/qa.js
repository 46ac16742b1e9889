// The QA queue (质检) of the lead's queues: closed conversations picked by sample, complaint
// or low CSAT, oldest first, each scored in a dialog against the centre's scorecard (one
// number 0 to 100 per item). Over the supervisor socket's qa_list and qa_score frames
// (docs/protocol.md); the gateway works out the weighted mean and keeps it.

import { h, setText } from "../dom.js";
import { tail } from "../format.js";

const REFRESH_EVERY_TICKS = 15; // new picks come with closes; once in a while is enough

export function mountQa({ list, empty, dialog, send, requests, agentName, t, announce, problem }) {
  let scorecard = [];
  let items = [];
  let scoring = null; // the conversation id the dialog scores
  let inFlight = null;
  let ticks = 0;
  const form = dialog.querySelector("form");
  form.noValidate = true; // the gateway's refusal names the item, in the page's language
  const fields = dialog.querySelector(".qa-items");
  const title = dialog.querySelector("h2");
  const refusal = dialog.querySelector(".problem");

  function ask() {
    if (inFlight) requests.forget(inFlight);
    const id = requests.open("qa", (frame) => {
      if (id !== inFlight) return;
      inFlight = null;
      scorecard = frame.scorecard;
      items = frame.conversations;
      render();
    }, (error) => {
      if (id === inFlight) inFlight = null;
      problem(error);
    });
    inFlight = id;
    if (!send({ type: "qa_list", request_id: id })) {
      requests.forget(id);
      inFlight = null;
    }
  }

  function describe(item) {
    const parts = [item.queue, item.channel];
    if (item.agent) parts.push(t("lead.result.agent", { agent: agentName(item.agent) }));
    parts.push(item.reasons.map((r) => t(`lead.qa.reason.${r}`)).join(", "));
    if (item.csat !== null) parts.push(t("lead.qa.csat", { score: item.csat }));
    return parts.join(" · ");
  }

  function render() {
    list.replaceChildren(
      ...items.map((item) => {
        const button = h("button", {
          type: "button", class: "result",
          "aria-label": t("lead.qa.score_label", { id: tail(item.conversation_id) }),
        });
        button.append(
          h("span", { class: "who", text: t("lead.qa.conversation", { id: tail(item.conversation_id) }) }),
          h("span", { class: "meta", text: describe(item) }),
        );
        button.addEventListener("click", () => open(item));
        return h("li", {}, button);
      }),
    );
    empty.hidden = items.length > 0;
  }

  function open(item) {
    scoring = item.conversation_id;
    setText(title, t("lead.qa.dialog", { id: tail(item.conversation_id) }));
    setText(refusal, "");
    fields.replaceChildren(
      ...scorecard.map((card, i) => {
        const input = h("input", { id: `qa-item-${i}`, name: card.name, type: "number", min: "0", max: "100", step: "1" });
        const label = h("label", { for: input.id, text: t("lead.qa.item", { name: card.name, weight: card.weight }) });
        const hint = card.description ? h("small", { class: "muted", text: card.description }) : null;
        return h("div", { class: "qa-item" }, label, input, ...(hint ? [hint] : []));
      }),
    );
    form.elements.namedItem("note").value = "";
    dialog.showModal();
    const first = fields.querySelector("input");
    if (first) first.focus();
  }

  function markInvalid(name) {
    for (const input of fields.querySelectorAll("input")) {
      input.setAttribute("aria-invalid", input.name === name ? "true" : "false");
      if (input.name === name) input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const scores = {};
    for (const input of fields.querySelectorAll("input")) {
      if (input.value.trim() === "") {
        setText(refusal, t("lead.qa.missing", { name: input.name }));
        markInvalid(input.name);
        return;
      }
      scores[input.name] = Number(input.value);
    }
    const conversationId = scoring;
    const id = requests.open("qa-score", () => {
      dialog.close();
      announce(t("lead.done.qa_score"));
      ask();
    }, (error) => {
      setText(refusal, t("error.prefix", { code: error.code, detail: error.detail }));
      if (error.field && error.field.startsWith("items.")) markInvalid(error.field.slice("items.".length));
    });
    const note = form.elements.namedItem("note").value.trim();
    const frame = { type: "qa_score", request_id: id, conversation_id: conversationId, items: scores };
    if (note) frame.note = note;
    if (!send(frame)) requests.forget(id);
  });
  dialog.querySelector("[data-cancel]").addEventListener("click", () => dialog.close());

  return {
    ask,
    tick() {
      ticks += 1;
      if (ticks % REFRESH_EVERY_TICKS === 0) ask();
    },
  };
}
