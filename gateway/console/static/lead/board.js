// The live wallboard: one row per queue (waiting, oldest wait, SLA met in the last 15
// minutes, agents available, busy and away) and one per agent (status with its reason and
// since when, load per channel, conversations held, and a control to set the status). Rows
// are reused between frames, so a status menu the lead has open is not redrawn under them.

import { h, setText, syncList } from "../dom.js";
import { clock, duration } from "../format.js";

function percent(share) {
  return share === null || share === undefined ? null : `${Math.round(share * 100)}%`;
}

/** "webchat 1/3 · email 0/5": per channel, what the agent holds and the most allowed. */
export function loadText(load, capacity) {
  const channels = [...new Set([...Object.keys(capacity || {}), ...Object.keys(load || {})])]
    .filter((c) => c !== "*")
    .sort();
  return channels.map((c) => `${c} ${(load && load[c]) || 0}/${capacity && c in capacity ? capacity[c] : "∞"}`).join(" · ");
}

export function mountBoard({ queuesBody, agentsBody, updated, onSetStatus, t, lang }) {
  let frame = null;
  let receivedAt = 0;
  let statuses = [];
  const none = () => t("lead.none");

  function cell(text, cls) {
    return h("td", { class: cls || null, text: text === null || text === undefined ? none() : String(text) });
  }

  function oldestText(queue, now) {
    if (queue.oldest_wait_s === null || queue.oldest_wait_s === undefined) return none();
    return duration(queue.oldest_wait_s * 1000 + (now - receivedAt), t);
  }

  function createQueue(queue) {
    const row = h("tr", {}, h("th", { scope: "row", text: queue.name }));
    for (let i = 0; i < 7; i += 1) row.append(h("td"));
    return row;
  }

  function updateQueue(row, queue) {
    const cells = row.children;
    const values = [
      queue.depth,
      oldestText(queue, Date.now()),
      percent(queue.sla_met_15m) ?? none(),
      queue.sla_answered_15m,
      queue.available,
      queue.busy,
      queue.away,
    ];
    values.forEach((value, i) => setText(cells[i + 1], String(value)));
    cells[1].classList.toggle("warn", queue.depth > 0 && queue.available === 0);
  }

  function statusLabel(status) {
    const key = `status.${status}`;
    const text = t(key);
    return text === key ? status.replaceAll("_", " ") : text;
  }

  function createAgent(agent) {
    const select = h("select", { "aria-label": t("lead.set_status_of", { name: agent.name || agent.id }) });
    select.addEventListener("change", () => onSetStatus(agent.id, select.value, select));
    const row = h(
      "tr",
      {},
      h("th", { scope: "row" }),
      h("td", {}, h("span", { class: "status-dot" }), h("span", { class: "status-text" })),
      h("td"),
      h("td"),
      h("td"),
      h("td", {}, select),
    );
    row.refs = { select };
    return row;
  }

  function updateAgent(row, agent) {
    const [name, status, since, load, held] = row.children;
    setText(name, agent.name && agent.name !== agent.id ? `${agent.name} (${agent.id})` : agent.id);
    status.dataset.status = agent.status;
    const reason = agent.reason ? ` · ${statusLabel(agent.reason)}` : "";
    setText(status.querySelector(".status-text"), statusLabel(agent.status) + reason);
    setText(since, agent.since_ms ? clock(agent.since_ms, lang) : none());
    setText(load, loadText(agent.load, agent.capacity) || none());
    setText(held, String(agent.conversations.length));
    const select = row.refs.select;
    const options = statuses.includes(agent.status) ? statuses : [...statuses, agent.status];
    if (select.dataset.options !== options.join("|")) {
      select.replaceChildren(...options.map((s) => h("option", { value: s, text: statusLabel(s) })));
      select.dataset.options = options.join("|");
    }
    // A menu the lead is using, or a change on its way, is theirs: the board does not undo it.
    if (document.activeElement !== select && !select.dataset.pending) select.value = agent.status;
  }

  function render() {
    if (!frame) return;
    syncList(queuesBody, frame.queues, (q) => q.name, createQueue, updateQueue);
    syncList(agentsBody, frame.agents, (a) => a.id, createAgent, updateAgent);
    setText(updated, t("lead.updated", { time: clock(frame.at_ms, lang) }));
  }

  return {
    setStatuses(list) {
      statuses = list;
    },
    apply(next) {
      frame = next;
      receivedAt = Date.now();
      render();
    },
    tick() {
      if (!frame) return;
      const now = Date.now();
      for (const row of queuesBody.children) {
        const queue = frame.queues.find((q) => q.name === row.dataset.key);
        if (queue) setText(row.children[2], oldestText(queue, now));
      }
    },
    agents: () => (frame ? frame.agents : []),
    /** The agent holding a conversation, as the last frame has it (null: none). */
    holderOf(conversationId) {
      const agent = frame && frame.agents.find((a) => a.conversations.includes(conversationId));
      return agent ? agent.id : null;
    },
    agentName(id) {
      const agent = frame && frame.agents.find((a) => a.id === id);
      return agent ? agent.name || agent.id : id;
    },
  };
}
