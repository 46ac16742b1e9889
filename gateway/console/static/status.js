// The agent's status: a select of what welcome.agent.statuses allows (the built-ins and the
// configured not-ready reasons), always showing the status the gateway last confirmed.

import { h, setText } from "./dom.js";

export function statusLabel(status, t) {
  const key = `status.${status}`;
  const label = t(key);
  return label === key ? status.replaceAll("_", " ") : label;
}

export function mountStatus({ select, note, store, send, t }) {
  select.addEventListener("change", () => {
    // The select shows the choice until the gateway's status frame confirms it (or an
    // error puts the confirmed status back).
    if (!send({ type: "set_status", status: select.value })) render();
  });

  function render() {
    const agent = store.agent;
    if (!agent) return;
    const statuses = agent.statuses.includes(agent.status) ? agent.statuses : [agent.status, ...agent.statuses];
    const current = [...select.options].map((o) => o.value).join("|");
    if (current !== statuses.join("|")) {
      select.replaceChildren(...statuses.map((s) => h("option", { value: s, text: statusLabel(s, t) })));
    }
    select.value = agent.status;
    select.dataset.status = agent.status === "available" ? "ready" : agent.status === "offline" ? "offline" : "not-ready";
    const reason = store.statusReason;
    if (!reason) setText(note, "");
    else {
      const key = `status.reason.${reason}`;
      const text = t(key);
      setText(note, text === key ? reason : text);
    }
  }

  return { render };
}
