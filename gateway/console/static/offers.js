// Offers: one card per offer, with what the agent needs to choose (channel, queue, grade
// and priority, customer, the first messages, a transfer's note) and a live countdown.

import { h, keyedList, setText } from "./dom.js";
import { clock, customerName, duration, timeOf } from "./format.js";

const PREVIEW_MESSAGES = 3;

export function mountOffers({ list, empty, store, send, t, lang }) {
  function accept(offerId) {
    if (send({ type: "accept", offer_id: offerId })) store.accepting(offerId);
  }

  function decline(offerId, reason) {
    const frame = { type: "decline", offer_id: offerId };
    if (reason) frame.reason = reason;
    if (send(frame)) store.declined(offerId);
  }

  function create(offer) {
    const c = offer.conversation;
    const who = customerName(c.customer, t);
    const reasonId = `decline-reason-${offer.offerId.replace(/[^\w-]/g, "_")}`;
    const timer = h("span", { class: "countdown-text" });
    const bar = h("span", { class: "countdown-bar" });
    const reason = h("input", { id: reasonId, type: "text", maxlength: "200", autocomplete: "off" });
    const acceptButton = h("button", { type: "button", class: "primary", text: t("offer.accept") });
    const declineButton = h("button", { type: "button", text: t("offer.decline") });
    acceptButton.addEventListener("click", () => accept(offer.offerId));
    declineButton.addEventListener("click", () => decline(offer.offerId, reason.value.trim()));
    const sla = c.sla_s ? (timeOf(c.created_at) || 0) + c.sla_s * 1000 : null;
    const el = h(
      "li",
      { class: "offer-card" },
      h(
        "article",
        { "aria-label": t("offer.label", { who }) },
        h(
          "p",
          { class: "tags" },
          h("span", { class: `tag channel-${c.channel}`, text: c.channel }),
          h("span", { class: "tag", text: t("field.queue_value", { queue: c.queue }) }),
          c.grade ? h("span", { class: "tag grade", text: t("field.grade_value", { grade: c.grade }) }) : null,
          h("span", { class: `tag priority p${c.priority}`, text: t("field.priority_value", { priority: c.priority }) }),
        ),
        h("p", { class: "customer" }, h("strong", { text: who }), c.customer.name ? h("span", { class: "muted", text: ` ${c.customer.id}` }) : null),
        c.transferred_from || c.transfer_note
          ? h("p", { class: "transfer-note", text: t("offer.transferred", { from: c.transferred_from || "?", note: c.transfer_note || "" }) })
          : null,
        c.leave_message ? h("p", { class: "flag", text: t("offer.leave_message") }) : null,
        h("ol", { class: "preview" }, ...c.messages.slice(0, PREVIEW_MESSAGES).map(previewLine)),
        sla ? h("p", { class: "sla", text: t("field.sla_value", { at: clock(sla, lang) }) }) : null,
        h("p", { class: "countdown", role: "timer", "aria-label": t("offer.time_left") }, timer, bar),
        h("p", { class: "decline-reason" }, h("label", { for: reasonId, text: t("offer.decline_reason") }), reason),
        h("p", { class: "buttons" }, acceptButton, declineButton),
      ),
    );
    el.refs = { timer, bar, acceptButton, declineButton, total: Math.max(1, offer.expiresAt - store.now()) };
    return el;
  }

  function previewLine(m) {
    const text = m.text || (m.attachments || []).map((a) => a.name).join(", ");
    return h("li", { class: m.direction === "in" ? "in" : "out", text });
  }

  function update(el, offer) {
    const left = offer.expiresAt - store.now();
    const { timer, bar, acceptButton, declineButton, total } = el.refs;
    setText(timer, left > 0 ? t("offer.expires_in", { left: duration(left + 999, t) }) : t("offer.expired"));
    bar.style.width = `${Math.max(0, Math.min(100, (100 * left) / total))}%`;
    el.classList.toggle("urgent", left < 10000);
    const off = offer.accepting || left <= 0;
    acceptButton.disabled = off;
    declineButton.disabled = off;
  }

  return keyedList({
    parent: list,
    empty,
    items: () => store.sortedOffers(),
    byKey: { get: (key) => store.offers.get(key) },
    keyOf: (offer) => offer.offerId,
    create,
    update,
  });
}
