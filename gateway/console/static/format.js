// Times and sizes for people. The protocol's times are RFC 3339 in UTC.

export function timeOf(rfc3339) {
  const ms = Date.parse(rfc3339);
  return Number.isNaN(ms) ? null : ms;
}

export function clock(ms, lang) {
  return new Date(ms).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}

export function dateTime(ms, lang) {
  return new Date(ms).toLocaleString(lang, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

/** "45 s", "3 min 5 s", "2 h 5 min", with the units of the language. */
export function duration(ms, t) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return t("unit.s", { n: s });
  const m = Math.floor(s / 60);
  if (m < 60) return t("unit.min_s", { m, s: s % 60 });
  return t("unit.h_min", { h: Math.floor(m / 60), m: m % 60 });
}

/** Ids share their heads (creation time in hex): show people the tail. */
export function tail(id) {
  return id ? String(id).slice(-6) : "";
}

export function size(bytes) {
  if (bytes === null || bytes === undefined) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** What to call a customer: their name, else their channel id (shortened when it is a long
 * opaque one, as web chat visitor ids are: "Visitor 8316", the details show it whole). */
export function customerName(customer, t = null) {
  if (!customer) return "?";
  if (customer.name) return customer.name;
  const id = String(customer.id);
  if (id.length <= 18 || id.includes("@")) return id;
  return t ? t("customer.anonymous", { tag: id.slice(-4) }) : `${id.slice(0, 6)}…${id.slice(-4)}`;
}
