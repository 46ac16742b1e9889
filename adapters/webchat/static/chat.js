/* Zhongtai web chat widget. No build step, no dependencies.
 *
 * On the gateway's own page it fills #zhongtai-chat. To embed it in another site:
 *   <script src="https://gateway.example.com/webchat/static/chat.js" defer></script>
 * It finds the socket next to its own address (…/webchat/ws), loads chat.css from there,
 * and fills #zhongtai-chat if the page has one, else opens a floating box.
 * (Add the site to [webchat] allowed_origins when that list is set.)
 * Its words are in strings.js (English and Chinese; ?lang=en|zh on the page forces one),
 * which it loads from next to itself when the page did not.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var staticBase = new URL(".", script ? script.src : location.href);
  var wsUrl = new URL("../ws", staticBase);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  var uploadUrl = new URL("../upload", staticBase);
  var storageKey = "zhongtai.webchat.visitor_token:" + wsUrl.host + wsUrl.pathname;
  var TYPING_EVERY_MS = 3000;
  // The server checks the same shapes (prechat.py); these only spare a round trip.
  var EMAIL = /^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$/;
  var PHONE = /^\+?[0-9 ().\-]{6,24}$/;
  var INPUT_TYPES = { name: ["text", "name"], email: ["email", "email"], phone: ["tel", "tel"] };
  var T = null;        // the words of the page's language (strings.js)
  var CLOSED = null;   // close reason -> {en, zh}
  var lang = "en";

  function pickLang() {
    var forced = new URLSearchParams(location.search).get("lang");
    if (forced === "en" || forced === "zh") return forced;
    return (navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, key) {
      return values && key in values ? String(values[key]) : all;
    });
  }

  // The deployment's sentences (welcome.close_messages) win, language by language.
  function useCloseMessages(configured) {
    Object.keys(configured || {}).forEach(function (reason) {
      var own = configured[reason][lang], known = CLOSED[reason] || CLOSED._unknown;
      if (own) CLOSED[reason] = { en: known.en, zh: known.zh };
      if (own) CLOSED[reason][lang] = own;
    });
  }

  function closeSentence(reason) {
    return (CLOSED[reason] || CLOSED._unknown)[lang];
  }

  function humanSize(bytes) {
    if (bytes >= 1e6) return +(bytes / 1e6).toFixed(1) + " MB";
    if (bytes >= 1e3) return +(bytes / 1e3).toFixed(1) + " KB";
    return bytes + " B";
  }

  function typeNames(types) {
    return types.map(function (t) {
      return t === "text/plain" ? "TXT" : t.split("/")[1].toUpperCase();
    }).join(", ");
  }

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
    root.lang = lang === "zh" ? "zh-CN" : "en";
    head.appendChild(el("span", "zt-title", T.title));
    var conn = el("span", "zt-conn", T.connecting);
    head.appendChild(conn);
    var log = el("div", "zt-log");
    log.setAttribute("aria-live", "polite");
    var status = el("div", "zt-status");
    var form = el("form", "zt-form");
    form.noValidate = true;  // our messages, in the page's language
    var prechat = el("fieldset", "zt-prechat");
    prechat.hidden = true;
    var row = el("div", "zt-row");
    var attach = el("button", "zt-attach", T.attach);
    attach.type = "button";
    attach.hidden = true;
    var file = el("input");
    file.type = "file";
    file.hidden = true;
    var limits = el("div", "zt-limits");
    limits.id = "zt-limits";
    limits.hidden = true;
    attach.setAttribute("aria-describedby", limits.id);
    var input = el("textarea");
    input.placeholder = T.placeholder;
    input.setAttribute("aria-label", T.message);
    var button = el("button", null, T.send);
    button.type = "submit";
    [attach, file, input, button].forEach(function (n) { row.appendChild(n); });
    [prechat, row, limits].forEach(function (n) { form.appendChild(n); });
    [head, log, status, form].forEach(function (n) { root.appendChild(n); });
    return {
      conn: conn, log: log, status: status, form: form, input: input, button: button,
      prechat: prechat, attach: attach, file: file, limits: limits
    };
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
    this.fields = null;         // the pre-chat form's inputs while it is to be filled
    this.uploads = null;        // {max_bytes, types} when the server takes files
    this.ratings = {};          // conversation id -> {box, note}: the ratings asked for
    this.lastRated = null;      // the conversation of the last csat frame sent
  }

  Chat.prototype.connect = function () {
    var self = this;
    var ws = new WebSocket(wsUrl.href);
    this.ws = ws;
    this.ready = false;
    ws.onopen = function () {
      self.ui.conn.textContent = T.connected;
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
        self.ui.conn.textContent = T.disconnected;
        self.setStatus(T.tooManyTabs);
        return;
      }
      var wait = self.retryMs * (0.5 + Math.random());
      self.retryMs = Math.min(self.retryMs * 2, 30000);
      self.ui.conn.textContent = T.reconnecting;
      setTimeout(function () { self.connect(); }, wait);
    };
  };

  Chat.prototype.handle = function (f) {
    switch (f.type) {
      case "welcome":
        saveToken(f.visitor_token);
        this.ready = true;
        this.retryMs = 1000;
        (f.messages || []).forEach(function (m) { this.showMessage(m); }, this);
        if (f.agent_name) this.setStatus(fill(T.helping, { name: f.agent_name }));
        if (f.prechat) { if (!this.fields) this.showPrechat(f.prechat); } else this.hidePrechat();
        this.showUploads(f.uploads || null);
        useCloseMessages(f.close_messages);
        this.flush();
        break;
      case "message":
        this.showMessage(f.message, f.client_msg_id);
        break;
      case "queue":
        var text = fill(T.queue, { position: f.position });
        if (f.eta_s) text += fill(T.eta, { minutes: Math.max(1, Math.round(f.eta_s / 60)) });
        this.setStatus(text);
        break;
      case "agent":
        this.notice(fill(T.joined, { name: f.name || T.anAgent }));
        this.setStatus(fill(T.helping, { name: f.name || T.anAgent }));
        break;
      case "agent_left":
        this.notice(T.agentLeft).dataset.reason = f.reason;
        this.setStatus(T.waitingAgain);
        break;
      case "closed":
        this.notice(closeSentence(f.reason)).dataset.reason = f.reason;
        this.setStatus("");
        break;
      case "csat_request":
        this.askRating(f.conversation_id, f.scale || 5);
        break;
      case "csat_thanks":
        this.rated(f.conversation_id, T.csatThanks);
        break;
      case "error":
        if (f.field === "conversation_id" && T.csatRefused[f.code] && this.ratings[this.lastRated]) {
          this.rated(this.lastRated, T.csatRefused[f.code]);
          break;
        }
        this.showError(f);
        break;
    }
  };

  // The rating a closed conversation asks for: one button per score (a radio group for
  // assistive technology: arrow keys move, the chosen one is announced), an optional
  // comment, and a send button.
  Chat.prototype.askRating = function (conversationId, scale) {
    if (this.ratings[conversationId]) return;
    var self = this;
    var box = el("fieldset", "zt-csat");
    box.appendChild(el("legend", null, T.csatQuestion));
    var group = el("div", "zt-csat-scores");
    group.setAttribute("role", "radiogroup");
    group.setAttribute("aria-label", T.csatQuestion);
    var chosen = 0;
    var buttons = [];
    var note = el("div", "zt-csat-note");
    note.setAttribute("role", "status");
    function choose(score, focus) {
      chosen = score;
      if (score) note.textContent = "";
      buttons.forEach(function (b, i) {
        var on = i + 1 === score;
        b.setAttribute("aria-checked", on ? "true" : "false");
        b.tabIndex = on || (!score && i === 0) ? 0 : -1;
        if (on && focus) b.focus();
      });
    }
    for (var score = 1; score <= scale; score++) {
      var b = el("button", "zt-csat-score", String(score));
      b.type = "button";
      b.setAttribute("role", "radio");
      var label = T.csatScores[score - 1] || "";
      b.setAttribute("aria-label", fill(T.csatScore, { score: score, scale: scale, label: label }));
      b.title = label;
      b.addEventListener("click", choose.bind(null, score, false));
      b.addEventListener("keydown", function (ev) {
        var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
        if (!step) return;
        ev.preventDefault();
        choose(Math.min(scale, Math.max(1, (chosen || 1) + (chosen ? step : 0))), true);
      });
      buttons.push(b);
      group.appendChild(b);
    }
    choose(0, false);
    var ends = el("div", "zt-csat-ends");
    ends.appendChild(el("span", null, T.csatScores[0]));
    ends.appendChild(el("span", null, T.csatScores[T.csatScores.length - 1]));
    ends.setAttribute("aria-hidden", "true");
    var comment = el("textarea", "zt-csat-comment");
    comment.setAttribute("aria-label", T.csatComment);
    comment.placeholder = T.csatComment;
    var send = el("button", "zt-csat-send", T.csatSend);
    send.type = "button";
    send.addEventListener("click", function () {
      if (!chosen) { note.textContent = fill(T.csatPick, { scale: scale }); return; }
      var frame = { type: "csat", conversation_id: conversationId, score: chosen };
      if (comment.value.trim()) frame.comment = comment.value.trim();
      self.lastRated = conversationId;
      if (self.ready) self.ws.send(JSON.stringify(frame));
    });
    [group, ends, comment, send, note].forEach(function (n) { box.appendChild(n); });
    this.ratings[conversationId] = { box: box, note: note };
    this.append(box);
  };

  // The rating is stored, or refused for good: the question gives way to a sentence.
  Chat.prototype.rated = function (conversationId, sentence) {
    var asked = this.ratings[conversationId];
    if (!asked) return;
    asked.box.textContent = "";
    asked.box.appendChild(el("p", "zt-notice", sentence));
  };

  Chat.prototype.showMessage = function (m, clientMsgId) {
    var i = this.pending.findIndex(function (p) { return p.client_msg_id === clientMsgId; });
    var node = null;
    if (clientMsgId && i >= 0) {
      node = this.pending[i].node;
      this.pending.splice(i, 1);
    }
    if (node && node.ztPrechat) this.hidePrechat();  // the server took the form
    if (this.shown[m.id]) {
      if (node && node !== this.shown[m.id]) node.remove();
      return;
    }
    if (!node) node = el("div");
    node.className = "zt-msg " + (m.direction === "in" ? "zt-in" : "zt-out");
    node.textContent = m.text;
    (m.attachments || []).forEach(function (a) { node.appendChild(attachmentNode(a)); });
    var when = new Date(m.sent_at);
    var meta = (m.direction === "out" && m.author ? m.author + " · " : "") +
      (isNaN(when) ? "" : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    node.appendChild(el("span", "zt-meta", meta));
    if (!node.parentNode) this.append(node);
    this.shown[m.id] = node;
  };

  Chat.prototype.showError = function (f) {
    var p = this.pending.find(function (x) { return f.client_msg_id && x.client_msg_id === f.client_msg_id; });
    var field = f.field && f.field.indexOf("prechat.") === 0 && this.fields &&
      this.fields[f.field.slice("prechat.".length)];
    if (field) this.markField(field, f.detail);
    if (p && f.code === "unavailable") {  // nothing stored (Redis loading): send it again soon
      var self = this;
      setTimeout(function () {
        if (self.ready && self.pending.indexOf(p) >= 0) self.ws.send(JSON.stringify(frameOf(p)));
      }, 5000);
      return;
    }
    if (p && f.code !== "internal") {  // refused: do not resend it; "internal" is worth a retry
      this.pending.splice(this.pending.indexOf(p), 1);
      failed(p.node, fill(T.notSent, { detail: f.detail }));
      return;
    }
    this.setStatus(fill(T.problem, { detail: f.detail }));
  };

  function failed(node, why) {
    node.classList.remove("zt-pending");
    node.classList.add("zt-failed");
    node.appendChild(el("span", "zt-meta", why));
  }

  function attachmentNode(a) {
    var url = new URL(a.url || "", staticBase).href;  // the gateway's, also when embedded
    var link = el("a", "zt-file");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    if (/^image\//.test(a.content_type || "")) {
      var img = el("img");
      img.src = url;
      img.alt = a.name;
      link.appendChild(img);
    } else {
      link.textContent = a.name + (a.size ? " (" + humanSize(a.size) + ")" : "");
    }
    return link;
  }

  // Sends text (and uploaded files), with the pre-chat answers while the form is open;
  // false when the form is not filled in right (its fields say why).
  Chat.prototype.send = function (text, attachments, node) {
    var values = null;
    if (this.fields) {
      values = this.checkPrechat();
      if (!values) return false;
    }
    var p = {
      client_msg_id: newId(), text: text, attachments: attachments || [], prechat: values,
      node: node || el("div", "zt-msg zt-in zt-pending", text)
    };
    p.node.ztPrechat = !!values;
    if (!p.node.parentNode) this.append(p.node);
    this.pending.push(p);
    if (this.ready) this.ws.send(JSON.stringify(frameOf(p)));
    return true;
  };

  function frameOf(p) {
    var frame = { type: "message", text: p.text, client_msg_id: p.client_msg_id };
    if (p.attachments.length) frame.attachments = p.attachments;
    if (p.prechat) frame.prechat = p.prechat;
    return frame;
  }

  // Resend what the server has not confirmed; the same client_msg_id makes it one message.
  Chat.prototype.flush = function () {
    var ws = this.ws;
    this.pending.forEach(function (p) { ws.send(JSON.stringify(frameOf(p))); });
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

  Chat.prototype.notice = function (text) {
    var node = el("div", "zt-notice", text);
    this.append(node);
    return node;
  };
  Chat.prototype.setStatus = function (text) { this.ui.status.textContent = text; };

  // The pre-chat form: shown while welcome asks for it, sent with the first message.
  Chat.prototype.showPrechat = function (specs) {
    var box = this.ui.prechat;
    box.textContent = "";
    box.appendChild(el("legend", null, T.prechatIntro));
    this.fields = {};
    specs.forEach(function (spec) {
      var id = "zt-prechat-" + spec.name;
      var types = INPUT_TYPES[spec.kind] || ["text", "off"];
      var label = el("label", null, spec.label || fill(T.labels[spec.kind] || "{name}", spec));
      label.htmlFor = id;
      if (!spec.required) label.appendChild(el("span", "zt-optional", " " + T.optional));
      var input = el("input");
      input.id = id;
      input.name = spec.name;
      input.type = types[0];
      input.autocomplete = types[1];
      input.maxLength = spec.max_chars || 200;
      input.required = !!spec.required;
      var error = el("span", "zt-field-error");
      error.id = id + "-error";
      error.setAttribute("aria-live", "polite");
      input.setAttribute("aria-describedby", error.id);
      var wrap = el("div", "zt-field");
      [label, input, error].forEach(function (n) { wrap.appendChild(n); });
      box.appendChild(wrap);
      this.fields[spec.name] = { spec: spec, input: input, error: error };
    }, this);
    box.hidden = false;
  };

  Chat.prototype.hidePrechat = function () {
    this.fields = null;
    this.ui.prechat.hidden = true;
    this.ui.prechat.textContent = "";
  };

  Chat.prototype.markField = function (field, why) {
    field.error.textContent = why || "";
    if (why) field.input.setAttribute("aria-invalid", "true");
    else field.input.removeAttribute("aria-invalid");
  };

  // The answers, or null after marking what is wrong and focusing the first such field.
  Chat.prototype.checkPrechat = function () {
    var values = {};
    var first = null;
    Object.keys(this.fields).forEach(function (name) {
      var field = this.fields[name];
      var value = field.input.value.trim();
      var spec = field.spec;
      var why = "";
      if (!value) why = spec.required ? T.required : "";
      else if (value.length > (spec.max_chars || 200)) why = fill(T.tooLong, { max: spec.max_chars });
      else if (spec.kind === "email" && !EMAIL.test(value)) why = T.badEmail;
      else if (spec.kind === "phone" && (!PHONE.test(value) || !/^(\D*\d){6,15}\D*$/.test(value))) why = T.badPhone;
      this.markField(field, why);
      if (why && !first) first = field.input;
      if (value && !why) values[name] = value;
    }, this);
    if (first) { first.focus(); return null; }
    return values;
  };

  // Uploads: shown when welcome says the server takes files.
  Chat.prototype.showUploads = function (limits) {
    this.uploads = limits;
    this.ui.attach.hidden = this.ui.limits.hidden = !limits;
    if (!limits) return;
    this.ui.file.accept = limits.types.join(",");
    this.ui.limits.textContent = fill(T.limits, {
      size: humanSize(limits.max_bytes), types: typeNames(limits.types)
    });
  };

  Chat.prototype.upload = function (file) {
    var self = this;
    var limits = this.uploads;
    var token = loadToken();
    if (!limits || !token) return;
    var names = { name: file.name, size: humanSize(limits.max_bytes), types: typeNames(limits.types) };
    if (file.size > limits.max_bytes) return this.setStatus(fill(T.fileTooBig, names));
    if (limits.types.indexOf(file.type) < 0) return this.setStatus(fill(T.fileType, names));
    if (this.fields && !this.checkPrechat()) return;
    var node = el("div", "zt-msg zt-in zt-pending", fill(T.uploading, names));
    this.append(node);
    var url = new URL(uploadUrl.href);
    url.searchParams.set("name", file.name);
    fetch(url.href, {
      method: "POST", body: file, headers: { "Content-Type": file.type, "X-Visitor-Token": token }
    }).then(function (res) {
      return res.json().then(function (body) { return { ok: res.ok, body: body }; });
    }).then(function (r) {
      if (!r.ok) return failed(node, fill(T.notSent, { detail: r.body.detail }));
      if (!self.send("", [{ id: r.body.id }], node)) failed(node, "");
    }).catch(function (err) {
      failed(node, fill(T.notSent, { detail: String(err && err.message || err) }));
    });
  };

  function start() {
    var strings = window.ZhongtaiChatStrings;
    if (!strings) {
      console.error("zhongtai web chat: strings.js did not load");
      return;
    }
    lang = pickLang();
    T = strings.words[lang];
    CLOSED = strings.closed;
    ensureCss();
    var ui = mount();
    var chat = new Chat(ui);
    ui.form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = ui.input.value.trim();
      if (!text || !chat.send(text)) return;
      ui.input.value = "";
      ui.input.focus();
    });
    ui.attach.addEventListener("click", function () { ui.file.click(); });
    ui.file.addEventListener("change", function () {
      Array.prototype.forEach.call(ui.file.files, function (f) { chat.upload(f); });
      ui.file.value = "";
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

  // The page may have loaded strings.js already (index.html does); an embedding site need not.
  function withStrings() {
    if (window.ZhongtaiChatStrings) return start();
    var tag = document.createElement("script");
    tag.src = new URL("strings.js", staticBase).href;
    tag.onload = tag.onerror = start;
    document.head.appendChild(tag);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", withStrings);
  else withStrings();
})();
