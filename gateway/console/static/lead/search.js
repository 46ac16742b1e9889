// Every open conversation of the lead's queues, filtered by text, customer, agent, queue and
// channel. The list stays live: it is asked for again (at most every REFRESH_MS) whenever the
// wallboard says something changed, and at once when a filter changes.

import { h, setText, syncList } from "../dom.js";
import { customerName, duration } from "../format.js";

const REFRESH_MS = 2000;
const TYPING_MS = 250;
const FILTERS = ["text", "customer", "agent", "queue", "channel"];

export function mountSearch({ form, list, count, empty, channels, send, requests, onWatch, agentName, t, problem }) {
  let results = [];
  let inFlight = null;
  let lastAsked = 0;
  let again = null;
  let typing = null;
  let watched = null;

  function filters() {
    const frame = {};
    for (const name of FILTERS) {
      const value = form.elements.namedItem(name).value.trim();
      if (value) frame[name] = value;
    }
    return frame;
  }

  function ask() {
    clearTimeout(again);
    again = null;
    if (inFlight) requests.forget(inFlight);
    const id = requests.open("search", (frame) => {
      if (id !== inFlight) return;
      inFlight = null;
      results = frame.conversations;
      render();
    }, (error) => {
      if (id === inFlight) inFlight = null;
      problem(error);
    });
    inFlight = id;
    lastAsked = Date.now();
    if (!send({ type: "search", request_id: id, ...filters() })) {
      requests.forget(id);
      inFlight = null;
    }
  }

  /** Something changed on the wallboard: ask again, but not more often than REFRESH_MS. */
  function refresh() {
    if (again) return;
    const wait = Math.max(0, lastAsked + REFRESH_MS - Date.now());
    again = setTimeout(ask, wait);
  }

  function waited(c, now) {
    return c.enqueued_ms && c.state !== "assigned" ? t("lead.result.waited", { time: duration(now - c.enqueued_ms, t) }) : "";
  }

  function create(c) {
    const who = customerName(c.customer, t);
    const button = h("button", { type: "button", class: "result", "aria-label": t("lead.watch_label", { who }) });
    button.addEventListener("click", () => onWatch(button.dataset.id));
    button.append(
      h("span", { class: "who" }),
      h("span", { class: "meta" }),
      h("span", { class: "last muted" }),
    );
    return h("li", {}, button);
  }

  function update(li, c) {
    const button = li.firstChild;
    button.dataset.id = c.id;
    button.setAttribute("aria-current", c.id === watched ? "true" : "false");
    const [who, meta, last] = button.children;
    setText(who, customerName(c.customer, t));
    const parts = [c.channel, c.queue, t(`lead.state.${c.state}`)];
    if (c.agent) parts.push(t("lead.result.agent", { agent: agentName(c.agent) }));
    const wait = waited(c, Date.now());
    if (wait) parts.push(wait);
    setText(meta, parts.join(" · "));
    setText(last, c.last_text || "");
  }

  function render() {
    syncList(list, results, (c) => c.id, create, update);
    empty.hidden = results.length > 0;
    setText(count, t("lead.search.count", { n: results.length }));
    const seen = new Set(results.map((c) => c.channel));
    const known = new Set([...channels.children].map((o) => o.value));
    for (const channel of seen) if (!known.has(channel)) channels.append(h("option", { value: channel }));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask();
  });
  form.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(ask, TYPING_MS);
  });

  return {
    ask,
    refresh,
    render,
    tick() {
      for (const li of list.children) {
        const c = results.find((r) => r.id === li.dataset.key);
        if (c) update(li, c);
      }
    },
    setWatched(id) {
      watched = id;
      render();
    },
    setQueues(queues) {
      const select = form.elements.namedItem("queue");
      select.replaceChildren(
        h("option", { value: "", text: t("lead.search.any") }),
        ...queues.map((q) => h("option", { value: q, text: q })),
      );
    },
  };
}
