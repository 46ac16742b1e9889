// The agent workspace: signs in, keeps one Connection, feeds its frames to the Store and
// draws the views from it. Each concern lives in its own module (canned replies, internal
// notes, the customer's earlier conversations too); this file only wires them.

import { mountActions } from "./actions.js";
import { mountCanned } from "./canned.js";
import { agentSocketUrl, CLOSE_BAD_TOKEN, CLOSE_REPLACED, Connection } from "./connection.js";
import { mountConversations } from "./conversations.js";
import { setText } from "./dom.js";
import { customerName } from "./format.js";
import { mountHistory } from "./history.js";
import { addProblem, showConnection } from "./notices.js";
import { mountRatings } from "./ratings.js";
import { createI18n, pickLanguage } from "./i18n.js";
import { Alerts } from "./notify.js";
import { mountOffers } from "./offers.js";
import { mountReply } from "./reply.js";
import { TabStorage } from "./session.js";
import { mountStatus } from "./status.js";
import { Store } from "./store.js";
import { mountThread } from "./thread.js";

const TICK_MS = 500;
const $ = (id) => document.getElementById(id);

function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function main() {
  const i18n = createI18n(pickLanguage());
  const { t, lang } = i18n;
  i18n.apply();
  for (const link of document.querySelectorAll("[data-lang-link]")) {
    const url = new URL(location.href);
    url.searchParams.set("lang", lang === "zh" ? "en" : "zh");
    link.href = url.search;
  }

  const storage = new TabStorage();
  const store = new Store();
  const alerts = new Alerts(storage);
  let connection = null;
  const send = (frame) => (connection ? connection.send(frame) : false);
  store.watching = () => !document.hidden;

  function sendReply(conversationId, text) {
    const cmid = newId();
    if (!send({ type: "reply", conversation_id: conversationId, text, client_msg_id: cmid })) return false;
    store.replySent(cmid, conversationId, text);
    return true;
  }

  // The same client_msg_id: the gateway sends a reply at most once (docs/protocol.md).
  function resend(cmid) {
    const reply = store.pending.get(cmid);
    if (!reply) return;
    const frame = { type: "reply", conversation_id: reply.conversationId, text: reply.text, client_msg_id: cmid };
    if (send(frame)) store.replyRetried(cmid);
  }

  function select(id) {
    store.select(id);
    storage.set("selected", store.selected);
    reply.focus();
  }

  const views = {
    status: mountStatus({ select: $("status"), note: $("status-note"), store, send, t }),
    offers: mountOffers({ list: $("offers"), empty: $("offers-empty"), store, send, t, lang: i18n.locale }),
    conversations: mountConversations({ list: $("conversations"), empty: $("conversations-empty"), store, select, t, lang: i18n.locale }),
    thread: mountThread({
      view: $("conversation-view"), emptyState: $("thread-empty"), title: $("conversation-title"),
      details: $("conversation-details"), list: $("thread"), store, retry: resend, t, lang: i18n.locale,
    }),
    actions: mountActions({
      transferButton: $("transfer"), noteButton: $("note"), closeButton: $("close-conversation"),
      dialog: $("transfer-dialog"), noteDialog: $("note-dialog"), closeDialog: $("close-dialog"),
      store, send, t, reason: i18n.reason,
    }),
    history: mountHistory({
      section: $("history"), list: $("history-list"), empty: $("history-empty"), store, send, t,
      reason: i18n.reason, lang: i18n.locale,
    }),
    canned: mountCanned({ form: $("reply-form"), textarea: $("reply"), list: $("canned-list"), store, t }),
    ratings: mountRatings({ section: $("ratings-section"), list: $("ratings"), store, t }),
  };
  const reply = mountReply({
    form: $("reply-form"), textarea: $("reply"), button: $("send"), hint: $("reply-hint"), store,
    drafts: () => storage.drafts(store.agent ? store.agent.id : "-"), sendReply, t,
  });
  views.reply = reply;

  const announce = (text) => setText($("announcer"), text);
  const whoOf = (conversation) => customerName(conversation && conversation.customer, t);

  const problem = (text) => addProblem($("problems"), text, t);

  store.addEventListener("change", (event) => {
    const d = event.detail;
    if (d.what === "welcome") {
      setText($("agent-name"), store.agent.name || store.agent.id);
      const remembered = storage.get("selected");
      if (store.selected === null && store.conversations.has(remembered)) store.select(remembered);
      for (const [cmid, pending] of store.pending) if (pending.resend) resend(cmid);
    } else if (d.what === "offer") {
      const text = t("announce.offer", { who: whoOf(d.conversation), channel: d.conversation.channel });
      announce(text);
      alerts.alert(t("offers.title"), text, `offer-${d.offerId}`);
    } else if (d.what === "offer_revoked" && d.offer) {
      announce(t("announce.revoked", { who: whoOf(d.offer.conversation), reason: i18n.reason(d.reason) }));
    } else if (d.what === "message" && d.message.direction === "in") {
      const text = t("announce.message", { who: whoOf(d.entry.conversation) });
      const looking = store.selected === d.conversationId && !document.hidden;
      if (!looking) {
        announce(text);
        alerts.alert(text, d.message.text, `message-${d.conversationId}`);
      }
    } else if (d.what === "deadline") {
      const what = t(`deadline.${d.frame.deadline}`);
      const text = t(`announce.deadline_${d.frame.stage}`, { who: whoOf(d.entry.conversation), what });
      announce(text);
      alerts.alert(text, "", `deadline-${d.conversationId}-${d.frame.deadline}-${d.frame.stage}`);
    } else if (d.what === "closed" && d.entry) {
      announce(t("announce.closed", { who: whoOf(d.entry.conversation), reason: i18n.reason(d.reason) }));
      storage.drafts(store.agent.id).set(d.conversationId, "");
    } else if (d.what === "csat") {
      const r = d.rating;
      const who = r.conversation ? whoOf(r.conversation) : r.conversationId.slice(-6);
      announce(t("announce.csat", { who, score: r.score, scale: r.scale }));
    } else if (d.what === "error") {
      problem(t("error.prefix", { code: d.error.code, detail: d.error.detail }));
    }
    if (d.what === "assigned" || d.what === "closed") storage.set("selected", store.selected);
    for (const view of Object.values(views)) view.render();
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) store.markRead();
  });

  document.addEventListener("keydown", (event) => {
    if (!event.altKey || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    const ids = store.sortedConversations().map((e) => e.conversation.id);
    if (!ids.length) return;
    event.preventDefault();
    const at = ids.indexOf(store.selected);
    const next = event.key === "ArrowDown" ? Math.min(ids.length - 1, at + 1) : Math.max(0, at - 1);
    select(ids[at === -1 ? 0 : next]);
  });

  setInterval(() => {
    store.dropExpiredOffers();
    views.offers.tick();
    views.conversations.tick();
    views.thread.tick();
  }, TICK_MS);

  const alertsBox = $("alerts");
  alertsBox.checked = alerts.enabled;
  alertsBox.addEventListener("change", () => alerts.setEnabled(alertsBox.checked));
  alerts.resumeOnGesture();

  function showSignin(message) {
    $("workspace").hidden = true;
    $("signin").hidden = false;
    setText($("signin-message"), message || "");
    $("token").focus();
  }

  function showBanner(text, actionText, action) {
    setText($("banner-text"), text);
    const button = $("banner-action");
    button.hidden = !actionText;
    button.textContent = actionText || "";
    button.onclick = action;
    $("banner").hidden = false;
  }

  function onConnection(detail) {
    showConnection($("connection"), detail, t);
    if (detail.state === "open") $("banner").hidden = true;
  }

  function refused(code) {
    storage.set("token", null);
    storage.set("role", null);
    showSignin(code === CLOSE_BAD_TOKEN ? t("signin.refused") : t("signin.unsupported"));
  }

  function signOut() {
    storage.set("token", null);
    storage.set("role", null);
    storage.set("selected", null);
    location.reload();
  }

  // A token is an agent's or a team lead's: the agent socket is asked first, and a token it
  // refuses is tried on the supervisor socket. The tab then remembers which it was.
  function asLead(token) {
    import("./lead/app.js").then(({ startLead }) => {
      startLead({
        token, i18n, onRefused: refused, onSignOut: signOut,
        onWelcome: () => storage.set("role", "lead"),
      });
    });
  }

  function connect(token) {
    const probing = storage.get("role") !== "agent";
    connection = new Connection(agentSocketUrl(), token);
    connection.addEventListener("frame", (event) => {
      if (event.detail.frame.type === "welcome") {
        storage.set("role", "agent");
        $("signin").hidden = true;
        $("workspace").hidden = false;
      }
      store.apply(event.detail.frame);
    });
    connection.addEventListener("state", (event) => onConnection(event.detail));
    connection.addEventListener("stopped", (event) => {
      const { code } = event.detail;
      if (code === CLOSE_REPLACED) {
        // Someone (this agent elsewhere) took over: coming back is the agent's own choice.
        showBanner(t("replaced.text"), t("replaced.again"), () => connection.start());
      } else if (code === CLOSE_BAD_TOKEN && probing) {
        connection = null;
        asLead(token);
      } else {
        refused(code);
      }
    });
    if (!probing) {
      $("signin").hidden = true;
      $("workspace").hidden = false;
    }
    connection.start();
  }

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    $("token").value = "";
    storage.set("token", token);
    connect(token);
  });

  $("signout").addEventListener("click", () => {
    if (connection) connection.stop();
    signOut();
  });

  const token = storage.get("token");
  if (token && storage.get("role") === "lead") asLead(token);
  else if (token) connect(token);
  else showSignin("");
}

main();
