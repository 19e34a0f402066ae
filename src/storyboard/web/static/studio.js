// Storyboard Studio: start a job, follow it live, review its frames, approve and export.
// Plain ES module; talks only to the service's /api/v2 endpoints.

const API = "/api/v2";
const FINAL = new Set(["storyboard_ready", "failed", "cancelled"]);
const STATUS_LABELS = {
  pending: "Queued",
  parsing: "Planning scenes",
  generating_storyboard: "Generating",
  storyboard_ready: "Ready for review",
  failed: "Failed",
  cancelled: "Cancelled",
};
const FIELD_LABELS = {
  prompt: "Prompt", duration: "Duration", style: "Style", aspect_ratio: "Aspect ratio",
  seed: "Seed", description: "Description", image_prompt: "Image prompt",
};
const POLL_MS = 1000;
const LIST_PAGE = 30;

const $ = (selector, root = document) => root.querySelector(selector);
const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message, fields = []) {
    super(message);
    this.status = status;
    this.fields = fields; // [{field, msg}] from a 422 body
  }
}

function errorFields(detail) {
  if (!Array.isArray(detail)) return [];
  return detail.map((item) => {
    const loc = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body") : [];
    return { field: loc.length ? String(loc[loc.length - 1]) : "", msg: String(item.msg ?? "") };
  });
}

async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers: body === undefined ? { Accept: "application/json" }
        : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "Cannot reach the Storyboard service. Check your connection and try again.");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const detail = data?.detail;
    const fields = errorFields(detail);
    let message;
    if (fields.length) {
      message = fields.map((f) => (f.field ? `${FIELD_LABELS[f.field] ?? f.field}: ${f.msg}` : f.msg)).join("\n");
    } else if (typeof detail === "string" && detail) {
      message = detail;
    } else {
      message = `The service answered ${response.status} ${response.statusText}`.trim();
    }
    throw new ApiError(response.status, message, fields);
  }
  return data;
}

// ---------------------------------------------------------------- Formatting

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

function formatDate(value) {
  const date = parseTime(value);
  return date ? dateFormat.format(date) : "";
}

function formatAgo(value) {
  const date = parseTime(value);
  if (!date) return "";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return formatDate(value);
}

function formatSeconds(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "";
  return `${Number.isInteger(n) ? n : n.toFixed(1).replace(/\.0$/, "")} s`;
}

function formatEta(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "";
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 1) return "almost done";
  if (s < 60) return `about ${s} s left`;
  const minutes = Math.floor(s / 60);
  const rest = s % 60;
  return `about ${minutes} min${rest ? ` ${rest} s` : ""} left`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// The same rule as storyboard.scenes.scene_count_for: one scene per 5 s, 3 to 10.
function sceneCountFor(duration) {
  return Math.max(3, Math.min(10, Math.floor(duration / 5)));
}

// The same rule as storyboard.scenes.beat_for.
function beatFor(number, total) {
  if (number === 1) return "Opening/Hook";
  if (number === total) return "Closing/CTA";
  if (number === 2) return "Context/Setup";
  return "Content/Product showcase";
}

function ratioOf(aspect) {
  const [w, h] = String(aspect || "16:9").split(":").map(Number);
  return w > 0 && h > 0 ? `${w} / ${h}` : "16 / 9";
}

function statusLabel(job) {
  if (job.status === "storyboard_ready" && job.approved) return "Approved";
  return STATUS_LABELS[job.status] ?? job.status;
}

function setBadge(element, job) {
  element.dataset.status = job.status;
  element.dataset.approved = String(Boolean(job.approved));
  element.textContent = statusLabel(job);
  element.title = job.status;
}

function showError(element, error) {
  if (!error) {
    element.hidden = true;
    element.textContent = "";
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  const lines = message.split("\n").filter(Boolean);
  element.replaceChildren();
  if (lines.length > 1) {
    const list = document.createElement("ul");
    for (const line of lines) {
      const item = document.createElement("li");
      item.textContent = line;
      list.append(item);
    }
    element.append(list);
  } else {
    element.textContent = message;
  }
  element.hidden = false;
}

// ---------------------------------------------------------------- State

const state = {
  jobId: null, // the job on screen
  job: null, // its latest JobResponse
  live: null, // {jobId, source, timer, closed}: the stream or poll following it
  cards: new Map(), // scene number -> frame element
  list: [], // job summaries in the sidebar, newest first
  listTotal: 0,
  listTimer: null,
};

// ---------------------------------------------------------------- Composer

const form = $("#generate-form");
const promptInput = byTestId("prompt");
const durationInput = byTestId("duration");
const styleInput = byTestId("style");
const seedInput = byTestId("seed");
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
for (const chip of document.querySelectorAll("[data-testid=style-preset]")) {
  chip.addEventListener("click", () => {
    styleInput.value = chip.dataset.style;
    styleInput.removeAttribute("aria-invalid");
    updateStyleChips();
  });
}

// ---------------------------------------------------------------- Job view

const jobView = byTestId("job-view");
const emptyState = byTestId("empty-state");
const framesList = byTestId("frames");
const actionError = byTestId("action-error");
const approveButton = byTestId("approve");
const cancelButton = byTestId("cancel");
const approvedState = byTestId("approved-state");
const frameTemplate = $("#frame-template");

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
  if (cost) facts.push(`${job.actual_cost !== null && job.actual_cost !== undefined ? "" : "est. "}$${Number(cost).toFixed(3)}`);
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

  const bar = byTestId("progress-bar");
  bar.setAttribute("aria-valuenow", String(percent));
  bar.dataset.value = String(percent);
  $(".progress-fill", bar).style.width = `${percent}%`;
  let barState = "running";
  if (!final && !total) barState = "indeterminate";
  else if (job.status === "storyboard_ready") barState = "done";
  else if (job.status === "failed") barState = "failed";
  else if (job.status === "cancelled") barState = "cancelled";
  bar.dataset.state = barState;

  const fallback = { pending: "Waiting to start", parsing: "Parsing prompt into scenes" }[job.status] ?? statusLabel(job);
  byTestId("progress-message").textContent = p.message || fallback;
  byTestId("progress-eta").textContent = final ? "" : formatEta(p.estimated_completion_seconds);
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

function setLink(link, href, enabled) {
  if (enabled) {
    link.href = href;
    link.removeAttribute("aria-disabled");
    link.removeAttribute("tabindex");
  } else {
    link.removeAttribute("href");
    link.setAttribute("aria-disabled", "true");
    link.setAttribute("tabindex", "-1");
  }
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
  cancelButton.hidden = final;
  approvedState.hidden = !job.approved;
  if (job.approved) {
    approvedState.innerHTML = '<svg viewBox="0 0 20 20" aria-hidden="true"><path d="m4 10.5 4 4 8-9" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/></svg>';
    const text = document.createElement("span");
    text.textContent = `Approved${job.approved_at ? ` \u00b7 ${formatDate(job.approved_at)}` : ""}`;
    approvedState.append(text);
    approvedState.title = job.approved_at ?? "";
  }
  const exportable = final && Boolean(job.storyboard?.length);
  setLink(byTestId("export-pdf"), `${API}/jobs/${job.job_id}/export.pdf`, exportable);
  setLink(byTestId("export-zip"), `${API}/jobs/${job.job_id}/export.zip`, exportable);
  const jobError = byTestId("job-error");
  if (job.status === "failed" && job.error_message) showError(jobError, job.error_message);
  else showError(jobError, null);
}

// Frames are updated in place, keyed by scene number, so images don't flicker and an open
// regenerate form survives progress updates.
function renderFrames(job) {
  const entries = [...(job.storyboard ?? [])].sort((a, b) => a.scene.scene_number - b.scene.scene_number);
  const aspect = String(job.parameters?.aspect_ratio ?? "16:9");
  framesList.dataset.aspect = aspect;
  framesList.style.setProperty("--ratio", ratioOf(aspect));
  const seen = new Set();
  entries.forEach((entry, index) => {
    const number = entry.scene.scene_number;
    seen.add(number);
    let card = state.cards.get(number);
    if (!card) {
      card = createCard(number);
      state.cards.set(number, card);
    }
    updateCard(card, entry, entries.length, job);
    if (framesList.children[index] !== card) framesList.insertBefore(card, framesList.children[index] ?? null);
  });
  for (const [number, card] of state.cards) {
    if (!seen.has(number)) {
      card.remove();
      state.cards.delete(number);
    }
  }
}

function createCard(number) {
  const card = frameTemplate.content.firstElementChild.cloneNode(true);
  card.dataset.scene = String(number);
  byTestId("regenerate", card).addEventListener("click", () => openRegenerate(card));
  byTestId("regenerate-cancel", card).addEventListener("click", () => closeRegenerate(card, true));
  byTestId("regenerate-form", card).addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeRegenerate(card, true);
  });
  byTestId("regenerate-form", card).addEventListener("submit", (event) => submitRegenerate(event, card));
  for (const box of byTestId("regenerate-form", card).querySelectorAll("textarea")) {
    box.addEventListener("input", () => fitToText(box));
  }
  return card;
}

function updateCard(card, entry, total, job) {
  const scene = entry.scene;
  const status = entry.generation_status;
  card.entry = entry;
  card.dataset.status = status;
  card.setAttribute("aria-label", `Scene ${scene.scene_number}`);

  const image = $(".frame-image", card);
  const placeholder = $(".frame-placeholder", card);
  if (entry.image_url) {
    if (image.getAttribute("src") !== entry.image_url) image.src = entry.image_url;
    image.alt = `Scene ${scene.scene_number}: ${scene.description}`;
    image.hidden = false;
  } else {
    image.hidden = true;
    image.removeAttribute("src");
  }
  // The service records "generating" only with a prediction id: the scene its progress names
  // is being drawn all the same (a lone redraw, or a frame of the sketch renderer).
  const drawing = status === "generating" || (status === "pending"
    && job.status === "generating_storyboard" && job.progress?.current_scene === scene.scene_number);
  card.dataset.drawing = String(drawing);
  const redraw = Boolean(entry.versions?.length);
  const titles = { pending: "Waiting", failed: "Image failed" };
  placeholder.hidden = status === "completed" || (Boolean(entry.image_url) && !drawing);
  $(".frame-placeholder-title", placeholder).textContent = drawing
    ? (redraw ? "Redrawing\u2026" : "Drawing\u2026")
    : status === "pending" && FINAL.has(job.status) ? "Not drawn" : titles[status] ?? "";
  byTestId("frame-failure", card).textContent = status === "failed" ? entry.error || "No reason given" : "";

  $(".frame-number", card).textContent = String(scene.scene_number).padStart(2, "0");
  byTestId("frame-scene", card).textContent = `Scene ${scene.scene_number}`;
  byTestId("frame-duration", card).textContent = formatSeconds(scene.duration);
  byTestId("frame-beat", card).textContent = beatFor(scene.scene_number, total);
  byTestId("frame-description", card).textContent = scene.description;

  renderVersions(card, entry);

  const regenerate = byTestId("regenerate", card);
  const busy = !FINAL.has(job.status);
  regenerate.disabled = busy;
  regenerate.title = busy ? "Wait until the storyboard is finished" : "Draw this frame again";
  const regenForm = byTestId("regenerate-form", card);
  if (busy && !regenForm.hidden && !regenForm.dataset.sending) closeRegenerate(card);
}

function renderVersions(card, entry) {
  const versions = entry.versions ?? [];
  const details = byTestId("frame-versions", card);
  details.hidden = versions.length === 0;
  details.dataset.count = String(versions.length);
  if (!versions.length) return;
  const label = `${plural(versions.length, "earlier version")}`;
  const summary = $("summary", details);
  if (summary.textContent !== label) summary.textContent = label;
  const strip = $(".version-strip", details);
  if (strip.dataset.count === String(versions.length)) return;
  strip.dataset.count = String(versions.length);
  strip.replaceChildren();
  versions.forEach((version, i) => {
    const item = document.createElement("li");
    let picture;
    if (version.image_url) {
      picture = document.createElement("img");
      picture.src = version.image_url;
      picture.alt = `Version ${i + 1}: ${version.description ?? ""}`;
      picture.loading = "lazy";
    } else {
      picture = document.createElement("div");
      picture.className = "version-missing";
    }
    const caption = document.createElement("span");
    caption.textContent = `v${i + 1}${version.replaced_at ? ` \u00b7 ${formatAgo(version.replaced_at)}` : ""}`;
    item.title = version.description ?? "";
    item.append(picture, caption);
    strip.append(item);
  });
}

// Grow a text box to its text, so a long description is read whole, not through a slot.
function fitToText(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${textarea.scrollHeight + 2}px`;
}

function openRegenerate(card) {
  const entry = card.entry;
  const regenForm = byTestId("regenerate-form", card);
  byTestId("regenerate-description", card).value = entry.scene.description;
  byTestId("regenerate-image-prompt", card).value = entry.scene.image_prompt;
  showError(byTestId("regenerate-error", card), null);
  regenForm.hidden = false;
  for (const box of regenForm.querySelectorAll("textarea")) fitToText(box);
  byTestId("regenerate", card).hidden = true;
  byTestId("regenerate-description", card).focus();
}

function closeRegenerate(card, refocus = false) {
  const regenForm = byTestId("regenerate-form", card);
  const hadFocus = regenForm.contains(document.activeElement);
  regenForm.hidden = true;
  byTestId("regenerate", card).hidden = false;
  // Focus would fall to <body> with the form: back to where the user started from.
  if (refocus || hadFocus) focusAfter(byTestId("regenerate", card));
}

// Keyboard users keep their place when the control they used disappears or is disabled.
function focusAfter(control) {
  if (control && !control.hidden && !control.disabled) control.focus();
  else $("#workspace").focus({ preventScroll: true });
}

async function submitRegenerate(event, card) {
  event.preventDefault();
  const entry = card.entry;
  const jobId = state.jobId;
  const regenForm = byTestId("regenerate-form", card);
  const submit = byTestId("regenerate-submit", card);
  const description = byTestId("regenerate-description", card).value.trim();
  const imagePrompt = byTestId("regenerate-image-prompt", card).value.trim();
  const body = {};
  if (description && description !== entry.scene.description) body.description = description;
  if (imagePrompt && imagePrompt !== entry.scene.image_prompt) body.image_prompt = imagePrompt;
  regenForm.dataset.sending = "1";
  submit.disabled = true;
  try {
    const job = await api(`/jobs/${jobId}/scenes/${entry.scene.scene_number}/regenerate`, { method: "POST", body });
    if (jobId !== state.jobId) return; // the user moved on: leave the job now shown alone
    closeRegenerate(card);
    showError(actionError, null);
    applyJob(job);
    follow(jobId);
  } catch (error) {
    showError(byTestId("regenerate-error", card), error);
  } finally {
    delete regenForm.dataset.sending;
    submit.disabled = false;
  }
}

async function runAction(button, path, busyText) {
  const jobId = state.jobId;
  const label = button.textContent;
  showError(actionError, null);
  button.disabled = true;
  button.classList.add("is-busy");
  button.textContent = busyText;
  try {
    const job = await api(`/jobs/${jobId}/${path}`, { method: "POST" });
    const hadFocus = document.activeElement === button;
    applyJob(job);
    if (hadFocus && button.hidden) focusAfter(null);
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

approveButton.addEventListener("click", () => runAction(approveButton, "approve", "Approving\u2026"));
// The live stream stays open after a cancel: frames already in flight may still land, and
// its "done" event comes once the run has really stopped.
cancelButton.addEventListener("click", () => runAction(cancelButton, "cancel", "Cancelling\u2026"));

function renderJob(job) {
  renderHeader(job);
  renderProgress(job);
  renderToolbar(job);
  renderFrames(job);
}

function applyJob(job) {
  if (!job || job.job_id !== state.jobId) return; // a late answer about a job no longer shown
  state.job = job;
  renderJob(job);
  updateListItem(job);
  const bar = byTestId("progress-bar");
  if (bar.dataset.fresh) requestAnimationFrame(() => requestAnimationFrame(() => delete bar.dataset.fresh));
}

// ---------------------------------------------------------------- Live updates

function stopLive() {
  const live = state.live;
  if (!live) return;
  live.closed = true;
  live.source?.close();
  clearTimeout(live.timer);
  state.live = null;
  scheduleListRefresh(); // the list skipped this job while it was followed live
}

function finished(live, job) {
  if (live.closed) return;
  stopLive();
  if (job) updateListItem(job);
}

// Server-sent events while the job runs; if the stream fails, poll once a second instead.
function follow(jobId) {
  stopLive();
  const live = { jobId, source: null, timer: null, closed: false };
  state.live = live;
  if (!("EventSource" in window)) {
    poll(live);
    return;
  }
  const source = new EventSource(`${API}/jobs/${jobId}/events`);
  live.source = source;
  const receive = (event) => {
    if (live.closed) return null;
    let job;
    try { job = JSON.parse(event.data); } catch { return null; }
    applyJob(job);
    return job;
  };
  source.addEventListener("progress", receive);
  source.addEventListener("message", receive);
  source.addEventListener("done", (event) => {
    const job = receive(event);
    finished(live, job);
  });
  source.addEventListener("error", () => {
    if (live.closed) return;
    source.close();
    live.source = null;
    poll(live);
  });
}

function poll(live) {
  const tick = async () => {
    if (live.closed) return;
    try {
      const job = await api(`/jobs/${live.jobId}`);
      if (live.closed) return;
      applyJob(job);
      if (FINAL.has(job.status)) {
        finished(live, job);
        return;
      }
      live.timer = setTimeout(tick, POLL_MS);
    } catch {
      if (!live.closed) live.timer = setTimeout(tick, POLL_MS * 2);
    }
  };
  tick();
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

function showEmpty() {
  stopLive();
  state.jobId = null;
  state.job = null;
  jobView.hidden = true;
  emptyState.hidden = false;
  document.title = "Storyboard Studio";
  markCurrentInList();
}

async function openJob(jobId) {
  if (state.jobId !== jobId) {
    stopLive();
    state.jobId = jobId;
    state.job = null;
    state.cards.clear();
    framesList.replaceChildren();
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
    if (!FINAL.has(job.status)) follow(jobId);
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
  for (const el of [approveButton, cancelButton, approvedState]) el.hidden = true;
  setLink(byTestId("export-pdf"), "", false);
  setLink(byTestId("export-zip"), "", false);
  showError(byTestId("job-error"), null);
}

function route() {
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

// ---------------------------------------------------------------- Job list

const jobList = byTestId("job-list");
const loadMoreButton = byTestId("load-more");

function listItem(job) {
  const li = document.createElement("li");
  const link = document.createElement("a");
  link.className = "job-item";
  link.href = `#/jobs/${job.job_id}`;
  link.dataset.testid = "job-item";
  link.dataset.jobId = String(job.job_id);

  const thumb = document.createElement("img");
  thumb.className = "job-thumb";
  thumb.alt = "";
  thumb.loading = "lazy";
  const text = document.createElement("span");
  text.className = "job-item-text";
  const prompt = document.createElement("span");
  prompt.className = "job-item-prompt";
  const meta = document.createElement("span");
  meta.className = "job-item-meta";
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.testid = "job-item-status";
  const when = document.createElement("span");
  when.className = "job-item-when";
  meta.append(badge, when);
  text.append(prompt, meta);
  link.append(thumb, text);
  li.append(link);
  fillListItem(li, job);
  return li;
}

function fillListItem(li, job) {
  const link = li.firstElementChild;
  const first = (job.storyboard ?? []).find((e) => e.image_url);
  const thumb = $(".job-thumb", link);
  if (first && thumb.getAttribute("src") !== first.image_url) thumb.src = first.image_url;
  if (!first) thumb.removeAttribute("src");
  const prompt = $(".job-item-prompt", link);
  prompt.textContent = job.prompt || `Storyboard #${job.job_id}`;
  link.title = job.prompt ?? "";
  setBadge($(".badge", link), job);
  const frames = job.storyboard?.length ? ` \u00b7 ${plural(job.storyboard.length, "frame")}` : "";
  $(".job-item-when", link).textContent = `${formatAgo(job.created_at)}${frames}`;
}

function markCurrentInList() {
  for (const link of jobList.querySelectorAll(".job-item")) {
    if (Number(link.dataset.jobId) === state.jobId) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// Items are updated in place, keyed by job id: a refresh neither flickers nor takes the
// keyboard focus away from the item it is on.
function renderList() {
  const items = new Map([...jobList.children].map((li) => [li.firstElementChild.dataset.jobId, li]));
  state.list.forEach((job, index) => {
    let li = items.get(String(job.job_id));
    if (li) fillListItem(li, job);
    else li = listItem(job);
    items.delete(String(job.job_id));
    if (jobList.children[index] !== li) jobList.insertBefore(li, jobList.children[index] ?? null);
  });
  for (const li of items.values()) li.remove();
  byTestId("job-list-empty").hidden = state.list.length > 0;
  byTestId("job-count").textContent = state.listTotal ? String(state.listTotal) : "";
  loadMoreButton.hidden = state.list.length >= state.listTotal;
  markCurrentInList();
  scheduleListRefresh();
}

function updateListItem(job) {
  const index = state.list.findIndex((j) => j.job_id === job.job_id);
  if (index === -1) return;
  state.list[index] = job;
  const link = jobList.querySelector(`.job-item[data-job-id="${job.job_id}"]`);
  if (link) fillListItem(link.parentElement, job);
}

async function loadList({ more = false } = {}) {
  try {
    const offset = more ? state.list.length : 0;
    const limit = more ? LIST_PAGE : Math.max(LIST_PAGE, state.list.length);
    const page = await api(`/jobs?limit=${Math.min(limit, 100)}&offset=${offset}`);
    // Newest first by id: jobs started since the last page shift offsets, so pages overlap;
    // a refresh of the first page keeps the older jobs the user had already paged to.
    const seen = new Set(page.jobs.map((j) => j.job_id));
    const oldest = page.jobs.length ? page.jobs[page.jobs.length - 1].job_id : Infinity;
    const kept = state.list.filter((j) => !seen.has(j.job_id) && (more || j.job_id < oldest));
    state.list = more ? [...kept, ...page.jobs] : [...page.jobs, ...kept];
    state.listTotal = page.total;
    renderList();
  } catch {
    // The list is a convenience: a failed refresh keeps the last one and tries again later.
    scheduleListRefresh(10000);
  }
}

// Jobs started elsewhere (CLI, another tab) still move: refresh every 3 s while any listed
// job runs, and now and then when none does, so new ones appear.
function scheduleListRefresh(delay) {
  clearTimeout(state.listTimer);
  const running = state.list.some((j) => !FINAL.has(j.status) && j.job_id !== state.live?.jobId);
  state.listTimer = setTimeout(() => loadList(), delay ?? (running ? 3000 : 15000));
}

loadMoreButton.addEventListener("click", () => loadList({ more: true }));

// ---------------------------------------------------------------- Start

updatePromptCount();
updateDurationHint();
updateStyleChips();
loadList();
route();
