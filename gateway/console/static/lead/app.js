// The team lead's view: the wallboard, the open conversations of their queues and the one
// they watch, the QA queue they score, over the supervisor socket (docs/protocol.md, "The supervisor socket"). The
// console's sign-in (../app.js) comes here when a token is a lead's.

import { CLOSE_BAD_TOKEN, CLOSE_UNSUPPORTED, Connection, supervisorSocketUrl } from "../connection.js";
import { setText } from "../dom.js";
import { addProblem, showConnection } from "../notices.js";
import { mountBoard } from "./board.js";
import { mountDeadlines } from "./deadlines.js";
import { mountQa } from "./qa.js";
import { Requests } from "./requests.js";
import { mountSearch } from "./search.js";
import { LEAD_TEXTS } from "./texts.js";
import { mountWatch } from "./watch.js";

const TICK_MS = 1000;
const $ = (id) => document.getElementById(id);

/**
 * Open the lead's socket with this token. onWelcome() runs once the gateway took the token
 * as a lead's; onRefused(code) when it closed for good (4401: not a lead's token, 4400).
 */
export function startLead({ token, i18n, onWelcome, onRefused, onSignOut }) {
  i18n.extend(LEAD_TEXTS);
  const { t } = i18n;
  const root = $("leadspace");
  i18n.apply(root);
  document.title = `${t("lead.title")} · Zhongtai`;

  const requests = new Requests();
  let connection = null;
  let lead = null;
  const send = (frame) => (connection ? connection.send(frame) : false);
  const announce = (text) => setText($("lead-announcer"), text);

  const problem = (error) => addProblem($("lead-problems"), t("error.prefix", { code: error.code, detail: error.detail }), t);

  const board = mountBoard({
    queuesBody: $("board-queues").tBodies[0],
    agentsBody: $("board-agents").tBodies[0],
    updated: $("board-updated"),
    onSetStatus(agentId, status, select) {
      select.dataset.pending = "1";
      const settle = () => delete select.dataset.pending;
      const id = requests.open("status", (done) => {
        settle();
        announce(t(`lead.done.${done.action}`));
      }, (error) => {
        settle();
        problem(error);
      });
      if (!send({ type: "set_agent_status", request_id: id, agent_id: agentId, status })) {
        requests.forget(id);
        settle();
      }
    },
    t,
    lang: i18n.locale,
  });

  const watch = mountWatch({
    els: {
      view: $("watch-view"), empty: $("watch-empty"), title: $("watch-title"), state: $("watch-state"),
      details: $("watch-details"), thread: $("watch-thread"), transfer: $("lead-transfer"),
      takeOver: $("lead-take-over"), close: $("lead-close"), unwatch: $("lead-unwatch"),
      transferDialog: $("lead-transfer-dialog"), closeDialog: $("lead-close-dialog"),
    },
    send, requests, board,
    queues: () => (lead ? lead.queues : []),
    leadAgent: () => (lead ? lead.agent : null),
    t, reason: i18n.reason, lang: i18n.locale, announce, problem,
  });

  const search = mountSearch({
    form: $("lead-search"), list: $("lead-results"), count: $("lead-results-count"),
    empty: $("lead-results-empty"), channels: $("lead-channels"), send, requests,
    onWatch: (id) => watch.watch(id), agentName: (id) => board.agentName(id), t, problem,
  });

  const deadlines = mountDeadlines({
    list: $("lead-deadlines"), empty: $("lead-deadlines-empty"), onWatch: (id) => watch.watch(id),
    agentName: (id) => board.agentName(id), t, lang: i18n.locale,
  });

  const qa = mountQa({
    list: $("lead-qa"), empty: $("lead-qa-empty"), dialog: $("lead-qa-dialog"), send, requests,
    agentName: (id) => board.agentName(id), t, announce, problem,
  });

  const handlers = {
    welcome(frame) {
      lead = frame.supervisor;
      setText($("lead-name"), lead.name || lead.id);
      board.setStatuses(frame.statuses);
      search.setQueues(lead.queues);
      $("signin").hidden = true;
      root.hidden = false;
      onWelcome();
      search.ask();
      qa.ask();
      const watching = watch.watchedId();
      if (watching) watch.watch(watching); // after a reconnect: the history afresh, then live
    },
    wallboard(frame) {
      board.apply(frame);
      watch.render();
      search.refresh();
    },
    search_results: (frame) => requests.settle(frame),
    qa_results: (frame) => requests.settle(frame),
    done: (frame) => requests.settle(frame),
    error(frame) {
      if (!requests.settle(frame)) problem(frame);
    },
    watching(frame) {
      watch.apply(frame);
      search.setWatched(frame.conversation_id);
    },
    message: (frame) => watch.apply(frame),
    closed(frame) {
      watch.apply(frame);
      deadlines.closed(frame.conversation_id);
      search.refresh();
    },
    deadline(frame) {
      deadlines.apply(frame);
      announce(t(`announce.deadline_${frame.stage}`, { who: frame.conversation_id, what: t(`deadline.${frame.deadline}`) }));
    },
    unwatched(frame) {
      watch.apply(frame);
      search.setWatched(null);
    },
  };

  connection = new Connection(supervisorSocketUrl(), token);
  connection.addEventListener("frame", (event) => {
    const handler = handlers[event.detail.frame.type];
    if (handler) handler(event.detail.frame);
  });
  connection.addEventListener("state", (event) => showConnection($("lead-connection"), event.detail, t));
  connection.addEventListener("stopped", (event) => {
    const { code } = event.detail;
    root.hidden = true;
    onRefused(code === CLOSE_BAD_TOKEN || code === CLOSE_UNSUPPORTED ? code : CLOSE_BAD_TOKEN);
  });
  $("lead-signout").addEventListener("click", () => {
    connection.stop();
    onSignOut();
  });
  setInterval(() => {
    board.tick();
    deadlines.tick();
    search.tick();
    qa.tick();
  }, TICK_MS);
  connection.start();
  return connection;
}
