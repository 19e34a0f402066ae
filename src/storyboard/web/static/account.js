// Who is using the studio (GET /whoami) and what the page offers them: the name in the top
// bar, "Sign out" for a stored token, and the page's mode on <body> (data-mode local | owner |
// share, data-can-edit, -comment, -approve), which the style sheet uses to hide what a caller
// cannot do. A reviewer through a share link gives their name once; it signs their comments
// and approval.

import { api } from "./api.js";
import { hasStoredToken, onSignedIn } from "./auth.js";
import { byTestId, showError } from "./dom.js";
import { state } from "./state.js";

const NAME_KEY = "storyboard.reviewer-name";

const whoami = byTestId("whoami");
const signOutButton = byTestId("sign-out");
const reviewerBar = byTestId("reviewer");
const nameInput = byTestId("reviewer-name");

export function showMe(me) {
  state.me = me;
  const flags = document.body.dataset;
  flags.mode = me.kind === "local" ? "local" : me.kind === "share" ? "share" : "owner";
  flags.canEdit = String(Boolean(me.can_edit));
  flags.canComment = String(Boolean(me.can_comment));
  flags.canApprove = String(Boolean(me.can_approve));

  // Single-user mode has nobody to tell apart: the top bar stays as it was.
  whoami.hidden = me.kind === "local";
  if (me.kind === "share") {
    whoami.textContent = "Reviewing a shared board";
    whoami.title = "Opened through a share link: you can look, and comment or approve if the link allows";
  } else {
    whoami.textContent = me.admin ? `${me.name} \u00b7 admin` : me.name;
    whoami.title = me.admin ? `Signed in as ${me.name}, who sees every board` : `Signed in as ${me.name}`;
  }
  signOutButton.hidden = !(me.kind === "token" && hasStoredToken());
  reviewerBar.hidden = me.kind !== "share" || !(me.can_comment || me.can_approve);
}

// Throws the service's refusal: through a share link, a 401 means the link is dead.
export async function loadMe() {
  const me = await api("/whoami");
  showMe(me);
  return me;
}

onSignedIn(showMe);

// ---------------------------------------------------------------- A reviewer's name

function savedName() {
  try { return localStorage.getItem(NAME_KEY) ?? ""; } catch { return ""; }
}

nameInput.value = savedName();
nameInput.addEventListener("input", () => {
  nameInput.removeAttribute("aria-invalid");
  try { localStorage.setItem(NAME_KEY, nameInput.value.trim()); } catch { /* asked again next visit */ }
});

// The name a share link's reviewer signs with: undefined for everyone else (the service knows
// a token's owner), null while it is missing (then ``errorElement`` says so and the field is
// focused: comments and approvals are worth little without a name).
export function reviewerName(errorElement) {
  if (state.me?.kind !== "share") return undefined;
  const name = nameInput.value.trim();
  if (name) return name;
  showError(errorElement, "Add your name at the top first, so the team knows who this is from.");
  nameInput.setAttribute("aria-invalid", "true");
  nameInput.focus();
  return null;
}
