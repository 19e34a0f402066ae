// Storyboard Studio: start a job, follow it live, review its frames, approve and export.
// Plain ES modules; talks only to the service's /api/v2 endpoints.
//
// The entry point index.html loads: the composer form, routing (#/ and #/jobs/{id}; a share
// link, /s#<token>, opens its one board) and start-up. The rest lives in modules named after
// what they do, imported from here: job.js (the job on screen), frames.js and regenerate.js
// (its frame cards and their form), bible.js (the story bible), comments.js (comments and
// requests for changes), animatic.js (the video player), downloads.js (export links),
// share.js (share links), live.js (following a run), list.js (the sidebar), auth.js (the
// token) and account.js (who is using the studio), api.js, dom.js, format.js, scenes.js,
// shots.js, status.js and state.js (shared pieces).

import { loadMe } from "./account.js";
import { api, ApiError } from "./api.js";
import { SHARE_LINK } from "./auth.js";
import { $, byTestId, showError } from "./dom.js";
import { plural } from "./format.js";
import { openJob, showEmpty } from "./job.js";
import { loadList } from "./list.js";
import { sceneCountFor } from "./scenes.js";
import { state } from "./state.js";

const PLANNER_HINTS = {
  auto: "The service's own choice of planner",
  rules: "Fixed beats: instant, offline and free",
  llm: "A language model writes the story, its characters and the shots",
};

// ---------------------------------------------------------------- Composer

const form = $("#generate-form");
const promptInput = byTestId("prompt");
const durationInput = byTestId("duration");
const styleInput = byTestId("style");
const seedInput = byTestId("seed");
const plannerSelect = byTestId("planner-select");
const reviewPlanInput = byTestId("review-plan");
const formError = byTestId("error");
const generateButton = byTestId("generate");

function updatePromptCount() {
  const n = promptInput.value.length;
  const counter = $("#prompt-count");
  counter.textContent = `${n} / 2000`;
  counter.classList.toggle("is-near", n > 1800);
}

function updateDurationHint() {
  const value = Number(durationInput.value);
  const hint = byTestId("duration-hint");
  if (!durationInput.value) hint.textContent = "Default 30 s";
  else if (!Number.isFinite(value) || value < 5 || value > 300) hint.textContent = "5 to 300 seconds";
  else hint.textContent = `${plural(sceneCountFor(value), "scene")}, 5\u2013300 s`;
}

// What this server plans with (GET /api/v2/planning), so the hint names the model, or says
// that none is configured before a generate is refused for it.
let planning = null;

function updatePlannerHint() {
  let hint = PLANNER_HINTS[plannerSelect.value] ?? "";
  const llm = planning?.llm;
  if (planning && plannerSelect.value === "auto") {
    hint = planning.default === "rules"
      ? "The rules (no language model is configured on this server)"
      : `${llm.kind} \u00b7 ${llm.model} writes the story, its characters and the shots`;
  } else if (planning && plannerSelect.value === "llm") {
    hint = llm ? `${llm.kind} \u00b7 ${llm.model} writes the story, its characters and the shots`
      : "No language model is configured on this server (see its README: OPENAI_API_KEY, STORYBOARD_LLM_BASE_URL or REPLICATE_API_KEY)";
  }
  byTestId("planner-hint").textContent = hint;
}

async function loadPlanning() {
  try {
    planning = await api("/planning");
    updatePlannerHint();
  } catch {
    planning = null; // the generic hints stay
  }
}

function updateStyleChips() {
  for (const chip of document.querySelectorAll("[data-testid=style-preset]")) {
    chip.setAttribute("aria-pressed", String(chip.dataset.style === styleInput.value.trim()));
  }
}

function clearFieldErrors() {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function markFieldErrors(fields) {
  for (const { field } of fields) {
    const input = field === "aspect_ratio" ? null : form.querySelector(`[name="${field}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
  const first = form.querySelector("[aria-invalid=true]");
  if (first) first.focus();
}

function readRequest() {
  const body = {
    prompt: promptInput.value,
    style: styleInput.value,
    aspect_ratio: form.querySelector("input[name=aspect_ratio]:checked")?.value ?? "16:9",
  };
  // Numbers are sent as typed (not clamped) so the service's own limits and messages apply.
  if (durationInput.value !== "") body.duration = Number(durationInput.value);
  else if (durationInput.validity.badInput) body.duration = durationInput.value;
  if (seedInput.value !== "") body.seed = Number(seedInput.value);
  body.planner = plannerSelect.value;
  body.review_plan = reviewPlanInput.checked;
  return body;
}

async function submitGenerate(event) {
  event.preventDefault();
  // requestSubmit() (Ctrl+Enter) ignores the disabled button: one job per click, not two.
  if (generateButton.disabled) return;
  clearFieldErrors();
  showError(formError, null);
  generateButton.disabled = true;
  generateButton.classList.add("is-busy");
  generateButton.textContent = "Starting\u2026";
  try {
    const created = await api("/generate", { method: "POST", body: readRequest() });
    promptInput.value = "";
    updatePromptCount();
    await loadList();
    navigateTo(created.job_id);
  } catch (error) {
    showError(formError, error);
    if (error instanceof ApiError) markFieldErrors(error.fields);
  } finally {
    generateButton.disabled = false;
    generateButton.classList.remove("is-busy");
    generateButton.textContent = "Generate storyboard";
  }
}

form.addEventListener("submit", submitGenerate);
promptInput.addEventListener("input", () => { updatePromptCount(); promptInput.removeAttribute("aria-invalid"); });
promptInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) form.requestSubmit();
});
durationInput.addEventListener("input", () => { updateDurationHint(); durationInput.removeAttribute("aria-invalid"); });
styleInput.addEventListener("input", () => { updateStyleChips(); styleInput.removeAttribute("aria-invalid"); });
seedInput.addEventListener("input", () => seedInput.removeAttribute("aria-invalid"));
plannerSelect.addEventListener("change", () => { updatePlannerHint(); plannerSelect.removeAttribute("aria-invalid"); });
reviewPlanInput.addEventListener("change", () => reviewPlanInput.removeAttribute("aria-invalid"));
for (const chip of document.querySelectorAll("[data-testid=style-preset]")) {
  chip.addEventListener("click", () => {
    styleInput.value = chip.dataset.style;
    styleInput.removeAttribute("aria-invalid");
    updateStyleChips();
  });
}

// ---------------------------------------------------------------- Routing

function navigateTo(jobId) {
  const hash = `#/jobs/${jobId}`;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function jobIdFromHash() {
  const match = /^#\/jobs\/(\d+)\/?$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function route() {
  if (SHARE_LINK) return; // the fragment is the link's token, not a place in the studio
  const jobId = jobIdFromHash();
  document.body.dataset.view = jobId === null ? "new" : "job";
  if (jobId === null) {
    showEmpty();
    if (location.hash === "#/") promptInput.focus();
    return;
  }
  const wasShown = state.jobId === jobId;
  openJob(jobId);
  // In one column the job replaces the form at the top: start reading it from there.
  if (!wasShown && window.matchMedia("(max-width: 1040px)").matches) window.scrollTo(0, 0);
}

window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- Start

// A reviewer through a share link sees its one board and nothing they cannot use: no composer,
// no list of an owner's boards, no link that would drop the token from the address.
async function startReview() {
  document.body.dataset.mode = "share";
  document.body.dataset.view = "job";
  byTestId("empty-state").hidden = true;
  $(".composer").remove();
  $(".library").remove();
  byTestId("new-storyboard").remove();
  const brand = $(".brand");
  brand.removeAttribute("href");
  brand.setAttribute("aria-label", "Storyboard Studio");
  let me = null;
  try {
    me = await loadMe();
  } catch (error) {
    // Revoked or expired (401) is what the page says by default; anything else is told as is.
    if (error.status !== 401) {
      $("[data-testid=link-invalid] h1").textContent = "This board cannot be opened right now";
      $("[data-testid=link-invalid] p").textContent = error.message;
    }
  }
  if (!me?.job_id) { // a dead link, or no share link at all (an owner's token, single-user mode)
    byTestId("link-invalid").hidden = false;
    return;
  }
  openJob(me.job_id);
}

if (SHARE_LINK) {
  startReview();
} else {
  updatePromptCount();
  updateDurationHint();
  updatePlannerHint();
  updateStyleChips();
  loadMe().catch(() => {}); // without it the top bar just names nobody
  loadPlanning();
  loadList();
  route();
}
