// How values read on screen: dates and ages, seconds, time left, counted words, money, spoken
// lines and aspect ratios. Pure functions of their arguments, no DOM.

function parseTime(value) {
  if (!value) return null;
  // The service stores UTC; a timestamp without a zone is UTC, not local time.
  const text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
});

export function formatDate(value) {
  const date = parseTime(value);
  return date ? dateFormat.format(date) : "";
}

export function formatAgo(value) {
  const date = parseTime(value);
  if (!date) return "";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return formatDate(value);
}

export function formatSeconds(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "";
  return `${Number.isInteger(n) ? n : n.toFixed(1).replace(/\.0$/, "")} s`;
}

export function formatEta(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "";
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 1) return "almost done";
  if (s < 60) return `about ${s} s left`;
  const minutes = Math.floor(s / 60);
  const rest = s % 60;
  return `about ${minutes} min${rest ? ` ${rest} s` : ""} left`;
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export const numberFormat = new Intl.NumberFormat();

// Planning costs fractions of a cent: four decimals say something, two would say $0.00.
export function formatCost(value) {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) return "";
  if (n < 0.0001) return "< $0.0001";
  return `$${n < 0.1 ? n.toFixed(4) : n.toFixed(2)}`;
}

// Spoken words in curly quotes, once: a plan may already have quoted them.
export function quoted(text) {
  const inner = text.trim().replace(/^["\u201c\u201d']+|["\u201c\u201d']+$/g, "").trim();
  return inner ? `\u201c${inner}\u201d` : "";
}

// "9:16" as the CSS aspect-ratio the frames are laid out with.
export function ratioOf(aspect) {
  const [w, h] = String(aspect || "16:9").split(":").map(Number);
  return w > 0 && h > 0 ? `${w} / ${h}` : "16 / 9";
}
