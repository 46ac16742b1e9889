/* Zhongtai web chat widget: the words it shows, in English and Chinese.
 *
 * chat.js picks the language from ?lang=en|zh on the page, else navigator.language (zh* is
 * Chinese, anything else English), and loads this file itself when the page did not.
 * CLOSED maps each reason of the server's `closed {reason}` frame to a sentence; a reason
 * not listed gets CLOSED._unknown. Tests check that every reason the gateway sends is here.
 */
(function () {
  "use strict";

  var CLOSED = {
    closed_by_agent: {
      en: "The agent ended the conversation. Write again to start a new one.",
      zh: "客服已结束本次会话。如需继续咨询，请再次发送消息。"
    },
    closed_by_supervisor: {
      en: "A supervisor ended the conversation. Write again to start a new one.",
      zh: "主管已结束本次会话。如需继续咨询，请再次发送消息。"
    },
    inactive: {
      en: "The conversation was closed because nobody wrote for a while. Write again to start a new one.",
      zh: "由于长时间没有新消息，会话已自动结束。如需继续咨询，请再次发送消息。"
    },
    max_wait: {
      en: "No agent was free in time, so the conversation was closed. Write again to try once more.",
      zh: "等待时间过长，暂无空闲客服，会话已结束。请再次发送消息重新排队。"
    },
    closed: {
      en: "The conversation was closed. Write again to start a new one.",
      zh: "会话已结束。如需继续咨询，请再次发送消息。"
    },
    _unknown: {
      en: "The conversation has ended. Write again to start a new one.",
      zh: "会话已结束。如需继续咨询，请再次发送消息。"
    }
  };

  var WORDS = {
    en: {
      title: "Customer service",
      connecting: "connecting…",
      connected: "connected",
      reconnecting: "reconnecting…",
      disconnected: "disconnected",
      tooManyTabs: "Too many chat windows are open. Close one and reload this page.",
      placeholder: "Write a message",
      message: "Message",
      send: "Send",
      queue: "You are number {position} in the queue.",
      eta: " About {minutes} min.",
      helping: "{name} is helping you.",
      joined: "{name} joined the conversation.",
      agentLeft: "Your agent had to leave; another agent will take over shortly.",
      waitingAgain: "Waiting for another agent…",
      anAgent: "An agent",
      problem: "Problem: {detail}",
      notSent: "Not sent: {detail}",
      prechatIntro: "Before we start, please tell us who you are.",
      optional: "(optional)",
      labels: { name: "Your name", email: "Email", phone: "Phone number", text: "{name}" },
      required: "Please fill in this field.",
      badEmail: "This is not an email address (name@example.com).",
      badPhone: "This is not a phone number (digits, spaces, + ( ) - .).",
      tooLong: "At most {max} characters.",
      attach: "Attach file",
      limits: "Files up to {size}: {types}",
      uploading: "Uploading {name}…",
      fileTooBig: "{name} is larger than {size}.",
      fileType: "{name}: this kind of file is not accepted. Allowed: {types}.",
      csatQuestion: "How satisfied are you with this conversation?",
      csatScores: ["Very unsatisfied", "Unsatisfied", "Neutral", "Satisfied", "Very satisfied"],
      csatScore: "{score} of {scale}: {label}",
      csatComment: "Comment (optional)",
      csatSend: "Send rating",
      csatPick: "Choose a score from 1 to {scale} first.",
      csatThanks: "Thank you for your rating.",
      csatRefused: {
        not_asked: "This conversation cannot be rated.",
        expired: "The time to rate this conversation is over.",
        already_rated: "You rated this conversation already."
      }
    },
    zh: {
      title: "在线客服",
      connecting: "正在连接…",
      connected: "已连接",
      reconnecting: "正在重新连接…",
      disconnected: "已断开",
      tooManyTabs: "打开的聊天窗口太多。请关闭一个后刷新本页。",
      placeholder: "输入消息",
      message: "消息",
      send: "发送",
      queue: "您当前排在第 {position} 位。",
      eta: "预计还需约 {minutes} 分钟。",
      helping: "{name} 正在为您服务。",
      joined: "{name} 已加入会话。",
      agentLeft: "您的客服暂时离开了，其他客服将很快为您继续服务。",
      waitingAgain: "正在为您转接其他客服…",
      anAgent: "客服",
      problem: "出现问题：{detail}",
      notSent: "未发送：{detail}",
      prechatIntro: "开始咨询前，请告诉我们您的信息。",
      optional: "（选填）",
      labels: { name: "您的姓名", email: "电子邮箱", phone: "手机号码", text: "{name}" },
      required: "请填写此项。",
      badEmail: "邮箱格式不正确（例如 name@example.com）。",
      badPhone: "电话号码格式不正确（只能包含数字、空格和 + ( ) - .）。",
      tooLong: "最多 {max} 个字符。",
      attach: "添加附件",
      limits: "文件不超过 {size}：{types}",
      uploading: "正在上传 {name}…",
      fileTooBig: "{name} 超过了 {size} 的大小限制。",
      fileType: "{name}：不支持此类文件。允许的类型：{types}。",
      csatQuestion: "您对本次服务满意吗？",
      csatScores: ["非常不满意", "不满意", "一般", "满意", "非常满意"],
      csatScore: "{score} 分（满分 {scale}）：{label}",
      csatComment: "意见或建议（选填）",
      csatSend: "提交评价",
      csatPick: "请先选择 1 到 {scale} 的评分。",
      csatThanks: "感谢您的评价。",
      csatRefused: {
        not_asked: "此会话无法评价。",
        expired: "评价时间已过。",
        already_rated: "您已评价过此会话。"
      }
    }
  };

  window.ZhongtaiChatStrings = { closed: CLOSED, words: WORDS };
})();
