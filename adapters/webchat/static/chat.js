/* Zhongtai web chat widget. No build step, no dependencies.
 *
 * On the gateway's own page it fills #zhongtai-chat. To embed it in another site:
 *   <script src="https://gateway.example.com/webchat/static/chat.js" defer></script>
 * It finds the socket next to its own address (…/webchat/ws), loads chat.css from there,
 * and fills #zhongtai-chat if the page has one, else opens a floating box.
 * (Add the site to [webchat] allowed_origins when that list is set.)
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var staticBase = new URL(".", script ? script.src : location.href);
  var wsUrl = new URL("../ws", staticBase);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  var storageKey = "zhongtai.webchat.visitor_token:" + wsUrl.host + wsUrl.pathname;
  var TYPING_EVERY_MS = 3000;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;  // never innerHTML: text is untrusted
    return node;
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function loadToken() {
    try { return localStorage.getItem(storageKey); } catch (e) { return null; }
  }

  function saveToken(token) {
    try { localStorage.setItem(storageKey, token); } catch (e) { /* private mode: no resume */ }
  }

  function ensureCss() {
    var href = new URL("chat.css", staticBase).href;
    var links = document.querySelectorAll("link[rel=stylesheet]");
    for (var i = 0; i < links.length; i++) if (links[i].href === href) return;
    var link = el("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.appendChild(link);
  }

  function mount() {
    var root = document.getElementById("zhongtai-chat");
    if (!root) {
      root = el("div", "zt-chat zt-floating");
      root.id = "zhongtai-chat";
      document.body.appendChild(root);
    }
    root.classList.add("zt-chat");
    root.textContent = "";
    var head = el("div", "zt-head");
    head.appendChild(el("span", "zt-title", "Customer service"));
    var conn = el("span", "zt-conn", "connecting…");
    head.appendChild(conn);
    var log = el("div", "zt-log");
    log.setAttribute("aria-live", "polite");
    var status = el("div", "zt-status");
    var form = el("form");
    var input = el("textarea");
    input.placeholder = "Write a message";
    input.setAttribute("aria-label", "Message");
    var button = el("button", null, "Send");
    button.type = "submit";
    form.appendChild(input);
    form.appendChild(button);
    [head, log, status, form].forEach(function (n) { root.appendChild(n); });
    return { conn: conn, log: log, status: status, form: form, input: input, button: button };
  }

  function Chat(ui) {
    this.ui = ui;
    this.ws = null;
    this.ready = false;         // welcome received on the current socket
    this.shown = {};            // message id -> element, so a message never shows twice
    this.pending = [];          // {client_msg_id, text, node}: sent, not yet confirmed stored
    this.retryMs = 1000;
    this.stopped = false;
    this.lastTyping = 0;
  }

  Chat.prototype.connect = function () {
    var self = this;
    var ws = new WebSocket(wsUrl.href);
    this.ws = ws;
    this.ready = false;
    ws.onopen = function () {
      self.ui.conn.textContent = "connected";
      var hello = { type: "hello" };
      var token = loadToken();
      if (token) hello.visitor_token = token;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = function (ev) {
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      self.handle(frame);
    };
    ws.onclose = function (ev) {
      if (self.ws !== ws) return;
      self.ready = false;
      if (ev.code === 1008) {  // refused by policy (too many tabs): do not hammer the server
        self.stopped = true;
        self.ui.conn.textContent = "disconnected";
        self.setStatus("Too many chat windows are open. Close one and reload this page.");
        return;
      }
      var wait = self.retryMs * (0.5 + Math.random());
      self.retryMs = Math.min(self.retryMs * 2, 30000);
      self.ui.conn.textContent = "reconnecting…";
      setTimeout(function () { self.connect(); }, wait);
    };
  };

  Chat.prototype.handle = function (f) {
    switch (f.type) {
      case "welcome":
        saveToken(f.visitor_token);
        this.ready = true;
        this.retryMs = 1000;
        (f.messages || []).forEach(this.showMessage, this);
        if (f.agent_name) this.setStatus(f.agent_name + " is helping you.");
        this.flush();
        break;
      case "message":
        this.showMessage(f.message, f.client_msg_id);
        break;
      case "queue":
        var text = "You are number " + f.position + " in the queue.";
        if (f.eta_s) text += " About " + Math.max(1, Math.round(f.eta_s / 60)) + " min.";
        this.setStatus(text);
        break;
      case "agent":
        this.notice(f.name + " joined the conversation.");
        this.setStatus(f.name + " is helping you.");
        break;
      case "closed":
        this.notice("The conversation was closed (" + f.reason + "). Write again to start a new one.");
        this.setStatus("");
        break;
      case "error":
        this.showError(f);
        break;
    }
  };

  Chat.prototype.showMessage = function (m, clientMsgId) {
    var i = this.pending.findIndex(function (p) { return p.client_msg_id === clientMsgId; });
    var node = null;
    if (clientMsgId && i >= 0) {
      node = this.pending[i].node;
      this.pending.splice(i, 1);
    }
    if (this.shown[m.id]) {
      if (node && node !== this.shown[m.id]) node.remove();
      return;
    }
    if (!node) node = el("div");
    node.className = "zt-msg " + (m.direction === "in" ? "zt-in" : "zt-out");
    node.textContent = m.text;
    var when = new Date(m.sent_at);
    var meta = (m.direction === "out" && m.author ? m.author + " · " : "") +
      (isNaN(when) ? "" : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    node.appendChild(el("span", "zt-meta", meta));
    if (!node.parentNode) this.append(node);
    this.shown[m.id] = node;
  };

  Chat.prototype.showError = function (f) {
    var p = this.pending.find(function (x) { return f.client_msg_id && x.client_msg_id === f.client_msg_id; });
    if (p && f.code !== "internal") {  // refused: do not resend it; "internal" is worth a retry
      this.pending.splice(this.pending.indexOf(p), 1);
      p.node.classList.remove("zt-pending");
      p.node.classList.add("zt-failed");
      p.node.appendChild(el("span", "zt-meta", "Not sent: " + f.detail));
      return;
    }
    this.setStatus("Problem: " + f.detail);
  };

  Chat.prototype.send = function (text) {
    var p = { client_msg_id: newId(), text: text, node: el("div", "zt-msg zt-in zt-pending", text) };
    this.append(p.node);
    this.pending.push(p);
    if (this.ready) this.ws.send(JSON.stringify({ type: "message", text: text, client_msg_id: p.client_msg_id }));
  };

  // Resend what the server has not confirmed; the same client_msg_id makes it one message.
  Chat.prototype.flush = function () {
    var ws = this.ws;
    this.pending.forEach(function (p) {
      ws.send(JSON.stringify({ type: "message", text: p.text, client_msg_id: p.client_msg_id }));
    });
  };

  Chat.prototype.typing = function () {
    var now = Date.now();
    if (!this.ready || now - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = now;
    this.ws.send('{"type":"typing"}');
  };

  Chat.prototype.append = function (node) {
    var log = this.ui.log;
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.appendChild(node);
    if (atBottom || node.classList.contains("zt-in")) log.scrollTop = log.scrollHeight;
  };

  Chat.prototype.notice = function (text) { this.append(el("div", "zt-notice", text)); };
  Chat.prototype.setStatus = function (text) { this.ui.status.textContent = text; };

  function start() {
    ensureCss();
    var ui = mount();
    var chat = new Chat(ui);
    ui.form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = ui.input.value.trim();
      if (!text) return;
      chat.send(text);
      ui.input.value = "";
      ui.input.focus();
    });
    ui.input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {  // isComposing: IME input
        ev.preventDefault();
        ui.form.requestSubmit();
      }
    });
    ui.input.addEventListener("input", function () { chat.typing(); });
    chat.connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
