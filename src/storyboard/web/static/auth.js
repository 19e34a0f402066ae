// The bearer token every API call carries, and where it comes from: a share link's fragment
// (/s#<token>, for this page only), or an owner's API token kept in localStorage and asked for
// in a dialog the first time the service answers 401. Also signed links (?access=) for what
// cannot send a header: <video>, download links and EventSource.

import { byTestId, showError } from "./dom.js";

const STORE_KEY = "storyboard.token";
// Checked here rather than through api.js, which imports this module.
const WHOAMI = "/api/v2/whoami";

// A share link carries its token in the fragment, which browsers never send to a server.
export const SHARE_LINK = location.pathname === "/s";
const shareToken = SHARE_LINK ? decodeURIComponent(location.hash.slice(1)) : "";

const dialog = byTestId("token-dialog");
const input = byTestId("token-input");
const saveButton = byTestId("token-save");
const dialogError = byTestId("token-error");
const signInButton = byTestId("sign-in");

// localStorage can be refused (a locked-down browser): the studio then asks each visit.
function stored() {
  try { return localStorage.getItem(STORE_KEY); } catch { return null; }
}

let memoryToken = null; // where the token is kept when localStorage refuses it

function store(token) {
  try { localStorage.setItem(STORE_KEY, token); } catch { /* kept for this page only */ }
  memoryToken = token;
}

export function currentToken() {
  if (SHARE_LINK) return shareToken || null; // never the owner's own, even if one is stored
  return stored() ?? memoryToken;
}

export function hasStoredToken() {
  return !SHARE_LINK && Boolean(stored());
}

export function authHeaders(token = currentToken()) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// ``url`` with the job's signed access value, when the job came with one (multi-user mode).
export function signed(url, access) {
  if (!access) return url;
  return `${url}${url.includes("?") ? "&" : "?"}access=${encodeURIComponent(access)}`;
}

// ---------------------------------------------------------------- Asking for a token

let waiting = null; // {promise, resolve} while the dialog waits for a token
const signedInListeners = [];

export function onSignedIn(listener) {
  signedInListeners.push(listener);
}

// Called by api() on a 401 for a request sent with ``used``: resolves once there is another
// token to try. Several requests refused at once share one dialog. A share link's token is
// the link itself: there is nothing to ask for, so the refusal stands.
export function tokenRefused(used, error) {
  if (SHARE_LINK) return Promise.reject(error);
  if (currentToken() !== used) return Promise.resolve(); // another request already got one
  if (!waiting) {
    let resolve;
    const promise = new Promise((done) => { resolve = done; });
    waiting = { promise, resolve };
    openDialog(used ? `Your saved token was not accepted: ${error.message}` : null);
  }
  return waiting.promise;
}

function openDialog(message) {
  showError(dialogError, message);
  signInButton.hidden = true;
  if (!dialog.open) dialog.showModal();
  input.focus();
}

async function verify(token) {
  let answer;
  try {
    answer = await fetch(WHOAMI, { headers: { Accept: "application/json", ...authHeaders(token) } });
  } catch {
    throw new Error("Cannot reach the Storyboard service. Check your connection and try again.");
  }
  const data = await answer.json().catch(() => null);
  if (!answer.ok) {
    const detail = typeof data?.detail === "string" ? data.detail : "";
    throw new Error(detail || `The service answered ${answer.status}`);
  }
  // A share link's token opens one board read-only: kept as the owner's, it would lock them out.
  if (data?.kind === "share") {
    throw new Error("That is a share link\u2019s token: open the link itself to review its board.");
  }
  return data;
}

async function save(event) {
  event.preventDefault();
  const token = input.value.trim();
  if (!token) {
    showError(dialogError, "Paste your API token (storyboard tokens create NAME makes one).");
    input.focus();
    return;
  }
  saveButton.disabled = true;
  try {
    const me = await verify(token);
    store(token);
    input.value = "";
    showError(dialogError, null);
    dialog.close();
    const pending = waiting;
    waiting = null;
    pending?.resolve();
    for (const listener of signedInListeners) listener(me);
  } catch (error) {
    showError(dialogError, error);
    input.select();
  } finally {
    saveButton.disabled = false;
  }
}

export function signOut() {
  try { localStorage.removeItem(STORE_KEY); } catch { /* nothing kept */ }
  memoryToken = null;
  location.assign("/"); // a fresh start: nothing of the last account's boards stays on screen
}

byTestId("token-form").addEventListener("submit", save);
// Dismissed without a token, the page stays as it is; the top bar offers the dialog again.
dialog.addEventListener("close", () => { signInButton.hidden = !waiting; });
signInButton.addEventListener("click", () => openDialog(null));
byTestId("sign-out").addEventListener("click", signOut);
