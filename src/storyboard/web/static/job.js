// The job on screen: its header, progress, toolbar (approve, cancel, render), the planner line
// and stale-frames notice, and opening a job or showing none; its exports, animatic, share
// links and comments are drawn by their own modules from here. applyJob is the one way a
// job's answer reaches the page, whoever asked for it.

import { reviewerName } from "./account.js";
import { clearAnimatic, renderAnimatic } from "./animatic.js";
import { api } from "./api.js";
import { clearBible, connectBible, renderBible } from "./bible.js";
import { clearComments, connectComments, loadComments, renderComments, renderRequestChanges } from "./comments.js";
import { $, byTestId, focusAfter, setText, showError } from "./dom.js";
import { clearDownloads, renderDownloads } from "./downloads.js";
import { formatCost, formatDate, formatEta, formatSeconds, numberFormat, plural } from "./format.js";
import { clearFrames, renderFrames } from "./frames.js";
import { markCurrentInList, updateListItem } from "./list.js";
import { follow, stopLive } from "./live.js";
import { connectRegenerate } from "./regenerate.js";
import { clearShare, renderShare } from "./share.js";
import { state } from "./state.js";
import { FINAL, IDLE, setBadge, statusLabel } from "./status.js";

const jobView = byTestId("job-view");
const emptyState = byTestId("empty-state");
const actionError = byTestId("action-error");
const approveButton = byTestId("approve");
const cancelButton = byTestId("cancel");
const approvedState = byTestId("approved-state");
const renderButton = byTestId("render-plan");
const staleNotice = byTestId("stale-notice");
const rerenderButton = byTestId("rerender-stale");

function renderHeader(job) {
  const params = job.parameters ?? {};
  byTestId("job-eyebrow").textContent = `Storyboard #${job.job_id} \u00b7 ${formatDate(job.created_at)}`;
  byTestId("job-title").textContent = job.prompt || `Storyboard #${job.job_id}`;
  byTestId("job-title").title = job.prompt ?? "";
  const facts = [];
  if (params.duration !== undefined) facts.push(formatSeconds(params.duration));
  if (params.style) facts.push(String(params.style));
  if (params.aspect_ratio) facts.push(String(params.aspect_ratio));
  if (params.seed !== undefined && params.seed !== null) facts.push(`seed ${params.seed}`);
  if (job.storyboard?.length) facts.push(plural(job.storyboard.length, "scene"));
  const cost = job.actual_cost ?? job.estimated_cost;
  // A plan alone costs fractions of a cent: shown as such, not as $0.000.
  const money = Number(cost) >= 0.001 ? `$${Number(cost).toFixed(3)}` : formatCost(cost);
  if (money) facts.push(`${job.actual_cost !== null && job.actual_cost !== undefined ? "" : "est. "}${money}`);
  const meta = byTestId("job-meta");
  meta.replaceChildren();
  facts.forEach((fact, i) => {
    if (i) {
      const sep = document.createElement("span");
      sep.className = "sep";
      sep.textContent = "\u00b7";
      meta.append(sep);
    }
    meta.append(fact);
  });
  setBadge(byTestId("job-status"), job);
  document.title = `${job.prompt ? job.prompt.slice(0, 60) : `#${job.job_id}`} \u2013 Storyboard Studio`;
}

function renderProgress(job) {
  const p = job.progress ?? {};
  const final = FINAL.has(job.status);
  const entries = job.storyboard ?? [];
  const total = Number(p.scenes_total) || entries.length;
  let done = Math.min(Number(p.scenes_completed) || 0, total);
  // A stopped job's progress is frozen at the cancel, though frames in flight may still have
  // landed; its storyboard says what was really finished.
  if (final && entries.length) {
    done = entries.filter((e) => e.generation_status === "completed" || e.generation_status === "failed").length;
  }
  let percent = total ? Math.round((done / total) * 100) : 0;
  if (job.status === "storyboard_ready") percent = 100;
  // A plan under review has sketches, not images: none of the images is made yet.
  const reviewing = job.status === "plan_ready";
  if (reviewing) percent = 0;

  const bar = byTestId("progress-bar");
  bar.setAttribute("aria-valuenow", String(percent));
  bar.dataset.value = String(percent);
  $(".progress-fill", bar).style.width = `${percent}%`;
  let barState = "running";
  if (!final && !total) barState = "indeterminate";
  else if (job.status === "storyboard_ready") barState = "done";
  else if (job.status === "failed") barState = "failed";
  else if (job.status === "cancelled") barState = "cancelled";
  else if (reviewing) barState = "plan";
  bar.dataset.state = barState;

  const fallback = {
    pending: "Waiting to start", parsing: "Parsing prompt into scenes", plan_ready: "Plan ready for review",
  }[job.status] ?? statusLabel(job);
  byTestId("progress-message").textContent = p.message || fallback;
  byTestId("progress-eta").textContent = IDLE.has(job.status) ? "" : formatEta(p.estimated_completion_seconds);
  if (reviewing) {
    byTestId("progress-count").textContent = `${plural(entries.length, "sketch frame")} to review \u00b7 `
      + "edit the bible or a shot, then render the images";
    return;
  }
  // The bar counts finished scenes (drawn or failed, as the service does); the text tells
  // them apart, so a failed frame is never counted as drawn.
  const failed = entries.filter((e) => e.generation_status === "failed").length;
  const drawn = entries.length ? entries.filter((e) => e.generation_status === "completed").length
    : Math.max(0, done - failed);
  let count = total ? `${drawn} of ${plural(total, "frame")} drawn` : "Planning scenes\u2026";
  if (failed) count += ` \u00b7 ${failed} failed`;
  if (final && job.updated_at) count += ` \u00b7 updated ${formatDate(job.updated_at)}`;
  byTestId("progress-count").textContent = count;
}

function renderToolbar(job) {
  const final = FINAL.has(job.status);
  const ready = job.status === "storyboard_ready";
  if (final && !cancelButton.hidden && ready && !job.approved) {
    // Approve takes Cancel's place as the job ends: a click aimed at Cancel must not land on
    // it and approve.
    approveButton.disabled = true;
    setTimeout(() => { approveButton.disabled = false; }, 700);
  }
  approveButton.hidden = !ready || job.approved;
  const reviewing = job.status === "plan_ready";
  if (reviewing && renderButton.hidden && !cancelButton.hidden) {
    // Render appears where Cancel was as the plan lands: a click aimed at Cancel must not
    // start paying for images.
    renderButton.disabled = true;
    setTimeout(() => { renderButton.disabled = false; }, 700);
  }
  renderButton.hidden = !reviewing;
  cancelButton.hidden = final;
  approvedState.hidden = !job.approved;
  if (job.approved) {
    approvedState.innerHTML = '<svg viewBox="0 0 20 20" aria-hidden="true"><path d="m4 10.5 4 4 8-9" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/></svg>';
    const text = document.createElement("span");
    // ``access`` comes only once the server has tokens: with several people on it, who
    // approved is worth saying (alone, it is always the local user).
    const who = job.access && job.approved_by ? ` by ${job.approved_by}` : "";
    text.textContent = `Approved${who}${job.approved_at ? ` \u00b7 ${formatDate(job.approved_at)}` : ""}`;
    approvedState.append(text);
    approvedState.title = job.approved_at ?? "";
  }
  renderDownloads(job);
  const jobError = byTestId("job-error");
  if (job.status === "failed" && job.error_message) showError(jobError, job.error_message);
  else showError(jobError, null);
}

// ``live``: the action starts a run (render, redraw), followed as it goes.
async function runAction(button, path, busyText, { body, live = false } = {}) {
  const jobId = state.jobId;
  const label = button.textContent;
  showError(actionError, null);
  button.disabled = true;
  button.classList.add("is-busy");
  button.textContent = busyText;
  try {
    const job = await api(`/jobs/${jobId}/${path}`, { method: "POST", body });
    const hadFocus = button.contains(document.activeElement);
    applyJob(job);
    if (live && jobId === state.jobId && !IDLE.has(job.status)) followJob(jobId);
    if (hadFocus && (button.hidden || button.closest("[hidden]"))) focusAfter(null);
    return job;
  } catch (error) {
    showError(actionError, error);
    return null;
  } finally {
    button.disabled = false;
    button.classList.remove("is-busy");
    button.textContent = label;
  }
}

approveButton.addEventListener("click", () => {
  // A reviewer through a share link approves under their own name; an owner is known.
  const name = reviewerName(actionError);
  if (name === null) return;
  runAction(approveButton, "approve", "Approving\u2026", { body: name ? { name } : undefined });
});
// The live stream stays open after a cancel: frames already in flight may still land, and
// its "done" event comes once the run has really stopped.
cancelButton.addEventListener("click", () => runAction(cancelButton, "cancel", "Cancelling\u2026"));
renderButton.addEventListener("click", () => runAction(renderButton, "render", "Starting\u2026", { live: true }));
rerenderButton.addEventListener("click", () => runAction(rerenderButton, "rerender", "Starting\u2026",
  { body: { scenes: "stale" }, live: true }));

function renderJob(job) {
  renderHeader(job);
  renderProgress(job);
  renderToolbar(job);
  renderStale(job);
  renderPlanner(job);
  renderBible(job);
  renderFrames(job);
  renderComments();
  renderRequestChanges(job);
  renderAnimatic(job);
  renderShare();
}

function applyJob(job) {
  if (!job || job.job_id !== state.jobId) return; // a late answer about a job no longer shown
  state.job = job;
  renderJob(job);
  updateListItem(job);
  const bar = byTestId("progress-bar");
  if (bar.dataset.fresh) requestAnimationFrame(() => requestAnimationFrame(() => delete bar.dataset.fresh));
}

// Every update of a followed job is drawn like any other answer.
function followJob(jobId) {
  follow(jobId, applyJob);
}

// The frame cards and the bible are drawn by applyJob and answer their own forms with it;
// handed in, so those modules need not import this one back.
connectRegenerate({ applyJob, follow: followJob });
connectBible({ applyJob });
connectComments({ applyJob });

// ---------------------------------------------------------------- Plan: planner, stale frames

function plannerText(info) {
  const parts = [info.kind === "rules" ? "Planned by the rules" : `Planned by ${info.kind}`];
  if (info.kind !== "rules" && info.model) parts.push(info.model);
  const tokens = (Number(info.input_tokens) || 0) + (Number(info.output_tokens) || 0);
  // A fallback's tokens went to the language model whose plan was not used.
  if (tokens) parts.push(`${numberFormat.format(tokens)} tokens${info.fallback_reason ? " spent on the language model" : ""}`);
  const cost = formatCost(info.cost);
  if (cost) parts.push(cost);
  return parts.join(" \u00b7 ");
}

function renderPlanner(job) {
  const info = job.plan?.planner;
  const line = byTestId("planner-info");
  setText(line, info ? plannerText(info) : "");
  line.title = info && (info.input_tokens || info.output_tokens)
    ? `${numberFormat.format(info.input_tokens || 0)} tokens in, ${numberFormat.format(info.output_tokens || 0)} out` : "";
  const notice = byTestId("planner-fallback");
  const reason = info?.fallback_reason;
  notice.hidden = !reason;
  if (!reason || notice.dataset.reason === reason) return;
  notice.dataset.reason = reason;
  const lead = document.createElement("strong");
  lead.textContent = "The language model\u2019s plan could not be used: ";
  notice.replaceChildren(lead, `${reason.replace(/[.\s]+$/, "")}. The shots were planned with the rules instead.`);
}

// Frames drawn before the bible changed: one button redraws them all (nothing else is drawn
// or spent until it is pressed).
function renderStale(job) {
  const stale = (job.storyboard ?? []).filter((e) => e.stale).length;
  const show = stale > 0 && FINAL.has(job.status);
  staleNotice.hidden = !show;
  if (!show) return;
  setText(byTestId("stale-text"), stale === 1
    ? "The plan changed after 1 frame was drawn: its image no longer matches it."
    : `The plan changed after ${stale} frames were drawn: their images no longer match it.`);
  if (!rerenderButton.classList.contains("is-busy")) setText(rerenderButton, `Redraw ${plural(stale, "stale frame")}`);
}

// ---------------------------------------------------------------- Opening a job

export function showEmpty() {
  stopLive();
  state.jobId = null;
  state.job = null;
  jobView.hidden = true;
  emptyState.hidden = false;
  document.title = "Storyboard Studio";
  markCurrentInList();
}

export async function openJob(jobId) {
  if (state.jobId !== jobId) {
    stopLive();
    state.jobId = jobId;
    state.job = null;
    clearFrames();
    // A job opened fresh shows its progress as it is, without animating up from zero.
    const bar = byTestId("progress-bar");
    bar.dataset.fresh = "1";
    showError(actionError, null);
    clearJobView(jobId);
  }
  emptyState.hidden = true;
  jobView.hidden = false;
  markCurrentInList();
  try {
    const job = await api(`/jobs/${jobId}`);
    if (state.jobId !== jobId) return;
    applyJob(job);
    if (!IDLE.has(job.status)) followJob(jobId);
    loadComments(jobId);
  } catch (error) {
    if (state.jobId !== jobId) return;
    clearJobView(jobId);
    showError(actionError, error.status === 404 ? `Storyboard #${jobId} does not exist.` : error);
  }
}

// Until a job's own answer arrives, nothing of the previous job may show (nor be acted on).
function clearJobView(jobId) {
  byTestId("job-title").textContent = `Storyboard #${jobId}`;
  byTestId("job-title").title = "";
  byTestId("job-eyebrow").textContent = "";
  byTestId("job-meta").textContent = "";
  const badge = byTestId("job-status");
  badge.textContent = "";
  badge.dataset.status = "";
  byTestId("progress-message").textContent = "";
  byTestId("progress-count").textContent = "";
  byTestId("progress-eta").textContent = "";
  const bar = byTestId("progress-bar");
  bar.dataset.state = "indeterminate";
  bar.setAttribute("aria-valuenow", "0");
  $(".progress-fill", bar).style.width = "0%";
  for (const el of [approveButton, cancelButton, approvedState, renderButton, staleNotice]) el.hidden = true;
  clearBible();
  clearComments();
  clearAnimatic();
  clearShare();
  clearDownloads();
  showError(byTestId("job-error"), null);
}
