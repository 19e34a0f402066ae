// Comments on the board and its frames: a thread in each frame card and one for the whole
// board, each with a form that adds to it, and "Request changes", a comment that takes the
// approval back. Loaded with the job, and again after each comment sent from here.

import { reviewerName } from "./account.js";
import { api } from "./api.js";
import { $, byTestId, fitToText, focusAfter, showError } from "./dom.js";
import { formatAgo, formatDate } from "./format.js";
import { state } from "./state.js";

// The job view (job.js) draws the job a request for changes leaves behind; it imports this
// module, so it hands applyJob in here instead of being imported back.
let view = null;

export function connectComments({ applyJob }) {
  view = { applyJob };
}

const boardSection = byTestId("board-comments");
const boardThread = createThread(null);
boardSection.append(boardThread);
const changesButton = byTestId("request-changes");
const changesForm = byTestId("request-changes-form");
const changesInput = byTestId("request-changes-input");
const changesError = byTestId("request-changes-error");
const changesSubmit = byTestId("request-changes-submit");

// ---------------------------------------------------------------- Threads

// A list of comments and the form that adds one, for scene ``scene`` (null: the whole board).
function createThread(scene) {
  const thread = document.createElement("div");
  thread.className = "comment-thread";
  const list = document.createElement("ol");
  list.className = "comment-list";
  const form = document.createElement("form");
  form.className = "comment-form";
  form.dataset.testid = "comment-form";
  form.noValidate = true;
  const input = document.createElement("textarea");
  input.rows = 1;
  input.maxLength = 2000;
  input.dataset.testid = "comment-input";
  const where = scene ? `scene ${scene}` : "the whole board";
  input.placeholder = scene ? "Add a comment\u2026" : "Add a comment on the whole board\u2026";
  input.setAttribute("aria-label", `Comment on ${where}`);
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.className = "btn btn-secondary btn-small";
  submit.dataset.testid = "comment-submit";
  submit.textContent = "Comment";
  const error = document.createElement("div");
  error.className = "alert alert-error";
  error.dataset.testid = "comment-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  form.append(input, submit, error);
  input.addEventListener("input", () => fitToText(input));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) form.requestSubmit();
  });
  form.addEventListener("submit", (event) => submitComment(event, scene, form));
  thread.append(list, form);
  return thread;
}

function commentItem(comment) {
  const item = document.createElement("li");
  item.className = "comment";
  item.dataset.testid = "comment";
  item.dataset.kind = comment.kind;
  const head = document.createElement("div");
  head.className = "comment-head";
  const author = document.createElement("span");
  author.className = "comment-author";
  author.dataset.testid = "comment-author";
  author.textContent = comment.author;
  if (comment.via) author.title = `Through ${comment.via}`;
  head.append(author);
  if (comment.kind === "changes") {
    const tag = document.createElement("span");
    tag.className = "comment-tag";
    tag.textContent = "Changes requested";
    head.append(tag);
  }
  const when = document.createElement("time");
  when.className = "comment-time";
  when.dateTime = comment.created_at ?? "";
  when.textContent = formatAgo(comment.created_at);
  when.title = formatDate(comment.created_at);
  head.append(when);
  const text = document.createElement("p");
  text.className = "comment-text";
  text.dataset.testid = "comment-text";
  text.textContent = comment.text;
  item.append(head, text);
  return item;
}

// Lists are rebuilt only when their comments change: live progress redraws the job often.
function fillThread(thread, comments) {
  const list = $(".comment-list", thread);
  const key = comments.map((c) => c.id).join(",");
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...comments.map(commentItem));
}

// Each frame card gets its thread the first time it is drawn, below the rest of the card.
export function renderComments() {
  for (const [number, card] of state.cards) {
    let section = $(".frame-comments", card);
    if (!section) {
      section = document.createElement("section");
      section.className = "frame-comments";
      section.dataset.testid = "frame-comments";
      section.setAttribute("aria-label", `Comments on scene ${number}`);
      section.append(createThread(number));
      $(".frame-body", card).append(section);
    }
    fillThread(section, state.comments.filter((c) => c.scene_number === number));
  }
  const general = state.comments.filter((c) => c.scene_number === null || c.scene_number === undefined);
  fillThread(boardThread, general);
  byTestId("board-comments-empty").hidden = general.length > 0;
  boardSection.hidden = false;
}

export async function loadComments(jobId = state.jobId) {
  try {
    const data = await api(`/jobs/${jobId}/comments`);
    if (jobId !== state.jobId) return;
    state.comments = data.comments ?? [];
    renderComments();
  } catch {
    // The board stands without them; they come with its next load.
  }
}

export function clearComments() {
  state.comments = [];
  fillThread(boardThread, []);
  boardSection.hidden = true;
  closeRequestChanges();
  changesButton.hidden = true;
}

async function submitComment(event, scene, form) {
  event.preventDefault();
  const jobId = state.jobId;
  const input = byTestId("comment-input", form);
  const submit = byTestId("comment-submit", form);
  const error = byTestId("comment-error", form);
  const text = input.value.trim();
  if (!text) {
    input.focus();
    return;
  }
  const author = reviewerName(error);
  if (author === null) return;
  const body = { text };
  if (scene) body.scene_number = scene;
  if (author) body.author = author;
  showError(error, null);
  submit.disabled = true;
  try {
    await api(`/jobs/${jobId}/comments`, { method: "POST", body });
    if (jobId !== state.jobId) return;
    input.value = "";
    input.style.height = "";
    await loadComments(jobId);
  } catch (failure) {
    showError(error, failure);
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- Request changes

// Changes are asked of a finished board (the service refuses them while frames are drawn).
export function renderRequestChanges(job) {
  const ready = job.status === "storyboard_ready";
  changesButton.hidden = !ready;
  if (!ready && !changesForm.hidden) closeRequestChanges();
}

function openRequestChanges() {
  changesForm.hidden = false;
  changesButton.setAttribute("aria-expanded", "true");
  showError(changesError, null);
  fitToText(changesInput);
  changesInput.focus();
}

function closeRequestChanges(refocus = false) {
  const hadFocus = changesForm.contains(document.activeElement);
  changesForm.hidden = true;
  changesButton.setAttribute("aria-expanded", "false");
  if (refocus || hadFocus) focusAfter(changesButton);
}

async function submitChanges(event) {
  event.preventDefault();
  const jobId = state.jobId;
  const text = changesInput.value.trim();
  if (!text) {
    showError(changesError, "Say what should change: it is sent to the board\u2019s author as a comment.");
    changesInput.focus();
    return;
  }
  const author = reviewerName(changesError);
  if (author === null) return;
  const body = { text };
  if (author) body.author = author;
  showError(changesError, null);
  changesSubmit.disabled = true;
  try {
    await api(`/jobs/${jobId}/request-changes`, { method: "POST", body });
    if (jobId !== state.jobId) return;
    changesInput.value = "";
    closeRequestChanges(true);
    // The approval is taken back: the job is drawn again as it now is.
    view.applyJob(await api(`/jobs/${jobId}`));
    await loadComments(jobId);
  } catch (error) {
    showError(changesError, error);
  } finally {
    changesSubmit.disabled = false;
  }
}

changesButton.addEventListener("click", () => (changesForm.hidden ? openRequestChanges() : closeRequestChanges(true)));
byTestId("request-changes-cancel").addEventListener("click", () => closeRequestChanges(true));
changesForm.addEventListener("submit", submitChanges);
changesForm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeRequestChanges(true);
});
changesInput.addEventListener("input", () => fitToText(changesInput));
