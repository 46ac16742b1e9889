// Chinese and English. The language follows the browser (navigator.languages); ?lang=zh or
// ?lang=en in the address forces one. Every text of the page comes from here: markup names
// its key in data-i18n (text), data-i18n-title, data-i18n-aria-label, data-i18n-placeholder.

const EN = {
  "app.title": "Agent console",
  "app.lang_other": "中文",
  "signin.intro": "Sign in with your agent token. It is kept in this tab only.",
  "signin.token": "Token",
  "signin.submit": "Sign in",
  "signin.refused": "The gateway refused this token. Check it and sign in again.",
  "signin.unsupported": "This gateway speaks another protocol version than this console.",
  "signout": "Sign out",
  "status.label": "Status",
  "status.available": "Available",
  "status.away": "Away",
  "status.offline": "Offline",
  "status.lunch": "Lunch",
  "status.training": "Training",
  "status.after_call_work": "After-call work",
  "status.meeting": "Meeting",
  "status.break": "Break",
  "status.reason.missed_offers": "Set away after missed offers",
  "status.reason.set_by_supervisor": "Set by a supervisor",
  "conn.connecting": "Connecting…",
  "conn.open": "Connected",
  "conn.waiting": "Connection lost; retrying in {time}",
  "conn.stopped": "Disconnected",
  "alerts.label": "Sound and desktop alerts",
  "replaced.text": "You signed in elsewhere (another tab or computer), so this tab was disconnected. It will not reconnect by itself.",
  "replaced.again": "Use this tab again",
  "offers.title": "Offers",
  "offers.empty": "No offers right now.",
  "offer.label": "Offer: {who}",
  "offer.accept": "Accept",
  "offer.decline": "Decline",
  "offer.decline_reason": "Decline reason (optional)",
  "offer.time_left": "Time left",
  "offer.expires_in": "Expires in {left}",
  "offer.expired": "Expired",
  "offer.transferred": "Transferred from {from}: {note}",
  "offer.leave_message": "The customer left a message: answer it as a message, not a live chat",
  "conversations.title": "Conversations",
  "conversations.empty": "No open conversations.",
  "conversations.unread": "{n} unread",
  "conversations.waiting": "waiting {time}",
  "thread.empty": "Select a conversation, or accept an offer.",
  "thread.system": "System",
  "thread.you": "You",
  "thread.agent": "Agent",
  "thread.messages": "Messages",
  "field.channel": "Channel",
  "field.customer": "Customer",
  "field.queue": "Queue",
  "field.queue_value": "queue {queue}",
  "field.priority": "Priority",
  "field.priority_value": "priority {priority}",
  "field.grade": "Grade",
  "field.grade_value": "grade {grade}",
  "field.sla": "SLA due",
  "field.sla_value": "SLA due {at}",
  "field.sla_target": "target {time}",
  "field.wechat_window": "WeChat window",
  "field.transfer": "Transfer",
  "field.mode": "Mode",
  "field.opened": "Opened",
  "field.id": "Id",
  "wechat.open_until": "open until {at} ({left} left)",
  "wechat.closed": "closed: replies are refused until the customer writes again",
  "actions.transfer": "Transfer",
  "actions.note": "Add note",
  "actions.note_title": "Internal notes arrive with the server support",
  "actions.close": "Close conversation",
  "reply.label": "Reply",
  "reply.send": "Send",
  "reply.hint": "Enter sends, Shift+Enter starts a new line.",
  "reply.offline": "Not connected: nothing was sent, your text is kept.",
  "reply.pending": "Sending…",
  "reply.refused": "Not sent: {reason}",
  "reply.retry": "Retry",
  "transfer.title": "Transfer the conversation",
  "transfer.agent": "To agent (id)",
  "transfer.queue": "To queue",
  "transfer.note": "Note for the next agent",
  "transfer.confirm": "Confirm transfer",
  "transfer.cancel": "Cancel",
  "transfer.need_target": "Give an agent, a queue, or both.",
  "announce.offer": "New offer: {who} on {channel}",
  "announce.message": "New message from {who}",
  "announce.revoked": "Offer for {who} withdrawn: {reason}",
  "announce.closed": "Conversation with {who} ended: {reason}",
  "reason.timeout": "it timed out",
  "reason.closed_by_agent": "closed",
  "reason.closed_by_supervisor": "closed by a supervisor",
  "reason.transferred": "transferred",
  "reason.inactive": "closed for inactivity",
  "reason.max_wait": "closed after the maximum wait",
  "error.prefix": "The gateway said: {code}: {detail}",
  "unit.s": "{n} s",
  "unit.min_s": "{m} min {s} s",
  "unit.h_min": "{h} h {m} min",
};

const ZH = {
  "app.title": "坐席工作台",
  "app.lang_other": "English",
  "signin.intro": "请用坐席令牌登录。令牌只保存在当前标签页中。",
  "signin.token": "令牌",
  "signin.submit": "登录",
  "signin.refused": "网关拒绝了该令牌。请检查后重新登录。",
  "signin.unsupported": "网关使用的协议版本与本工作台不同。",
  "signout": "退出登录",
  "status.label": "状态",
  "status.available": "就绪",
  "status.away": "离开",
  "status.offline": "离线",
  "status.lunch": "午餐",
  "status.training": "培训",
  "status.after_call_work": "话后处理",
  "status.meeting": "会议",
  "status.break": "小休",
  "status.reason.missed_offers": "连续未应答，已被设为离开",
  "status.reason.set_by_supervisor": "由班长设置",
  "conn.connecting": "正在连接…",
  "conn.open": "已连接",
  "conn.waiting": "连接中断，{time}后重试",
  "conn.stopped": "已断开",
  "alerts.label": "声音和桌面提醒",
  "replaced.text": "您已在别处（其他标签页或电脑）登录，本标签页已断开，不会自动重连。",
  "replaced.again": "在本标签页继续使用",
  "offers.title": "待接会话",
  "offers.empty": "暂无待接会话。",
  "offer.label": "待接：{who}",
  "offer.accept": "接受",
  "offer.decline": "拒绝",
  "offer.decline_reason": "拒绝原因（可选）",
  "offer.time_left": "剩余时间",
  "offer.expires_in": "{left}后过期",
  "offer.expired": "已过期",
  "offer.transferred": "由 {from} 转接：{note}",
  "offer.leave_message": "客户已留言：请按留言处理，而非实时对话",
  "conversations.title": "会话",
  "conversations.empty": "暂无进行中的会话。",
  "conversations.unread": "{n} 条未读",
  "conversations.waiting": "已等待 {time}",
  "thread.empty": "请选择一个会话，或接受待接会话。",
  "thread.system": "系统",
  "thread.you": "我",
  "thread.agent": "坐席",
  "thread.messages": "消息",
  "field.channel": "渠道",
  "field.customer": "客户",
  "field.queue": "队列",
  "field.queue_value": "队列 {queue}",
  "field.priority": "优先级",
  "field.priority_value": "优先级 {priority}",
  "field.grade": "投诉分级",
  "field.grade_value": "{grade} 级",
  "field.sla": "SLA 截止",
  "field.sla_value": "SLA 截止 {at}",
  "field.sla_target": "目标 {time}",
  "field.wechat_window": "微信回复窗口",
  "field.transfer": "转接",
  "field.mode": "方式",
  "field.opened": "开始时间",
  "field.id": "编号",
  "wechat.open_until": "{at} 前可回复（剩余 {left}）",
  "wechat.closed": "已关闭：客户再次发消息前无法回复",
  "actions.transfer": "转接",
  "actions.note": "添加备注",
  "actions.note_title": "内部备注将在服务端支持后提供",
  "actions.close": "关闭会话",
  "reply.label": "回复",
  "reply.send": "发送",
  "reply.hint": "Enter 发送，Shift+Enter 换行。",
  "reply.offline": "未连接：没有发送任何内容，您的文字已保留。",
  "reply.pending": "发送中…",
  "reply.refused": "未发送：{reason}",
  "reply.retry": "重试",
  "transfer.title": "转接会话",
  "transfer.agent": "转给坐席（编号）",
  "transfer.queue": "转到队列",
  "transfer.note": "给下一位坐席的备注",
  "transfer.confirm": "确认转接",
  "transfer.cancel": "取消",
  "transfer.need_target": "请填写坐席或队列（或两者）。",
  "announce.offer": "新的待接会话：{who}（{channel}）",
  "announce.message": "{who} 发来新消息",
  "announce.revoked": "{who} 的待接会话已撤回：{reason}",
  "announce.closed": "与 {who} 的会话已结束：{reason}",
  "reason.timeout": "超时",
  "reason.closed_by_agent": "已关闭",
  "reason.closed_by_supervisor": "班长已关闭",
  "reason.transferred": "已转接",
  "reason.inactive": "因长时间无消息而关闭",
  "reason.max_wait": "超过最长等待时间而关闭",
  "error.prefix": "网关返回：{code}：{detail}",
  "unit.s": "{n} 秒",
  "unit.min_s": "{m} 分 {s} 秒",
  "unit.h_min": "{h} 小时 {m} 分",
};

const MESSAGES = { en: EN, zh: ZH };

export function pickLanguage(search = location.search, languages = navigator.languages || [navigator.language]) {
  const forced = new URLSearchParams(search).get("lang");
  if (forced && forced.toLowerCase().startsWith("zh")) return "zh";
  if (forced && forced.toLowerCase().startsWith("en")) return "en";
  const first = (languages || []).find(Boolean) || "en";
  return first.toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function createI18n(lang) {
  const table = MESSAGES[lang] || EN;
  const locale = lang === "zh" ? "zh-CN" : "en";

  function t(key, vars = {}) {
    const text = table[key] ?? EN[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  }

  /** Text of a code from the server (a close or revoke reason): ours if known, else as is. */
  function reason(code) {
    const key = `reason.${code}`;
    const text = t(key);
    return text === key ? String(code).replaceAll("_", " ") : text;
  }

  function apply(root = document) {
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
    for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
    for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    document.documentElement.lang = locale;
    document.title = `${t("app.title")} · Zhongtai`;
  }

  return { lang, locale, t, reason, apply };
}
