// Sharing a board for review (its owner only): a form for a new link (who it is for, how long
// it lasts, whether the reviewer may comment, approve and request changes), the link itself,
// shown once with a copy button, and the board's links so far, each revocable.

import { api } from "./api.js";
import { byTestId, focusAfter, showError } from "./dom.js";
import { formatDate } from "./format.js";
import { state } from "./state.js";

const button = byTestId("share");
const panel = byTestId("share-panel");
const form = byTestId("share-form");
const labelInput = byTestId("share-label");
const expiresInput = byTestId("share-expires");
const commentsBox = byTestId("share-allow-comments");
const approveBox = byTestId("share-allow-approve");
const createButton = byTestId("share-create");
const formError = byTestId("share-error");
const result = byTestId("share-result");
const urlField = byTestId("share-url");
const copied = byTestId("share-copied");
const list = byTestId("share-list");
const listEmpty = byTestId("share-list-empty");

// Shown for any board on screen; the style sheet hides it from all but owners (single-user mode
// has nobody to share with: every request there acts as the local user).
export function renderShare() {
  button.hidden = false;
}

export function clearShare() {
  closeShare();
  button.hidden = true;
}

function openShare() {
  panel.hidden = false;
  button.setAttribute("aria-expanded", "true");
  result.hidden = true;
  urlField.value = "";
  showError(formError, null);
  list.replaceChildren();
  listEmpty.hidden = true;
  loadShares(state.jobId);
  labelInput.focus();
}

function closeShare() {
  const hadFocus = panel.contains(document.activeElement);
  panel.hidden = true;
  button.setAttribute("aria-expanded", "false");
  urlField.value = ""; // the link's token is shown once: not left in the page
  if (hadFocus) focusAfter(button);
}

async function loadShares(jobId) {
  try {
    const data = await api(`/jobs/${jobId}/shares`);
    if (jobId !== state.jobId || panel.hidden) return;
    renderShares(data.shares ?? []);
  } catch (error) {
    showError(formError, error);
  }
}

function renderShares(shares) {
  list.replaceChildren(...[...shares].reverse().map(shareItem)); // newest first
  listEmpty.hidden = shares.length > 0;
}

function shareItem(share) {
  const item = document.createElement("li");
  item.className = "share-item";
  item.dataset.testid = "share-item";
  item.dataset.shareId = String(share.id);
  item.dataset.active = String(Boolean(share.active));

  const text = document.createElement("div");
  text.className = "share-item-text";
  const name = document.createElement("span");
  name.className = "share-item-name";
  name.textContent = share.label || `Link #${share.id}`;
  const terms = [share.allow_comments ? "comments" : "no comments"];
  if (share.allow_approve) terms.push("may approve");
  terms.push(share.expires_at ? `until ${formatDate(share.expires_at)}` : "no expiry");
  const facts = document.createElement("span");
  facts.className = "share-item-facts";
  facts.textContent = terms.join(" \u00b7 ");
  facts.title = `Made ${formatDate(share.created_at)}${share.created_by ? ` by ${share.created_by}` : ""}`;
  text.append(name, facts);
  item.append(text);

  if (share.active) {
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "btn btn-ghost btn-small share-revoke";
    revoke.dataset.testid = "share-revoke";
    revoke.textContent = "Revoke";
    revoke.addEventListener("click", () => revokeShare(share, revoke));
    item.append(revoke);
  } else {
    const gone = document.createElement("span");
    gone.className = "share-item-state";
    gone.textContent = share.revoked_at ? "Revoked" : "Expired";
    item.append(gone);
  }
  return item;
}

async function revokeShare(share, revoke) {
  const jobId = state.jobId;
  revoke.disabled = true;
  try {
    await api(`/jobs/${jobId}/shares/${share.id}`, { method: "DELETE" });
    await loadShares(jobId);
    list.querySelector(".share-revoke")?.focus(); // the keyboard stays in the list
  } catch (error) {
    showError(formError, error);
    revoke.disabled = false;
  }
}

async function createShare(event) {
  event.preventDefault();
  const jobId = state.jobId;
  const body = { allow_comments: commentsBox.checked, allow_approve: approveBox.checked };
  const label = labelInput.value.trim();
  if (label) body.label = label;
  // Sent as typed (not clamped), so the service's own limits and message apply.
  if (expiresInput.value !== "") body.expires_in_hours = Number(expiresInput.value);
  else if (expiresInput.validity.badInput) body.expires_in_hours = expiresInput.value;
  showError(formError, null);
  createButton.disabled = true;
  try {
    const made = await api(`/jobs/${jobId}/share`, { method: "POST", body });
    if (jobId !== state.jobId) return;
    urlField.value = location.origin + made.url;
    result.hidden = false;
    copied.textContent = "";
    urlField.focus();
    urlField.select();
    labelInput.value = "";
    await loadShares(jobId);
  } catch (error) {
    showError(formError, error);
  } finally {
    createButton.disabled = false;
  }
}

async function copyLink() {
  urlField.select();
  try {
    await navigator.clipboard.writeText(urlField.value);
    copied.textContent = "Copied";
  } catch {
    // No clipboard API (an insecure origin): the selection is copied the older way.
    copied.textContent = document.execCommand("copy") ? "Copied" : "Press Ctrl+C to copy";
  }
}

button.addEventListener("click", () => (panel.hidden ? openShare() : closeShare()));
byTestId("share-close").addEventListener("click", closeShare);
form.addEventListener("submit", createShare);
byTestId("share-copy").addEventListener("click", copyLink);
panel.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeShare();
});
