// Storyboard Studio: start a job, follow it live, review its frames, approve and export.
// Plain ES module; talks only to the service's /api/v2 endpoints.

const API = "/api/v2";
const FINAL = new Set(["storyboard_ready", "failed", "cancelled"]);
// No run works on these jobs: final, or a plan waiting for the user to render it. Nothing
// more arrives on its own, so nothing is followed live.
const IDLE = new Set([...FINAL, "plan_ready"]);
const STATUS_LABELS = {
  pending: "Queued",
  parsing: "Planning scenes",
  plan_ready: "Plan ready",
  generating_storyboard: "Generating",
  storyboard_ready: "Ready for review",
  failed: "Failed",
  cancelled: "Cancelled",
};
const FIELD_LABELS = {
  prompt: "Prompt", duration: "Duration", style: "Style", aspect_ratio: "Aspect ratio",
  seed: "Seed", planner: "Planner", review_plan: "Plan first",
  description: "Description", image_prompt: "Image prompt",
  visual: "What the camera sees", shot_size: "Shot size", camera_angle: "Camera angle",
  camera_movement: "Camera movement", lighting: "Lighting", characters: "Characters",
  location: "Location", dialogue: "Dialogue", transition: "Transition",
  title: "Title", logline: "Logline", name: "Name", look: "Look", palette: "Palette",
  locations: "Locations", scenes: "Scenes", scene_number: "Scene",
};
// The shot vocabulary of storyboard/shots.py: value -> [words for people, SHORT].
const SHOT_SIZES = {
  extreme_wide: ["Extreme wide", "EWS"], wide: ["Wide", "WS"], full: ["Full", "FS"],
  medium: ["Medium", "MS"], medium_close_up: ["Medium close-up", "MCU"],
  close_up: ["Close-up", "CU"], extreme_close_up: ["Extreme close-up", "ECU"],
  insert: ["Insert (a detail)", "INSERT"],
};
const CAMERA_ANGLES = {
  eye_level: ["Eye level", "EYE LEVEL"], high: ["High, looking down", "HIGH"],
  low: ["Low, looking up", "LOW"], overhead: ["Overhead", "OVERHEAD"],
  dutch: ["Dutch (tilted)", "DUTCH"], pov: ["Point of view", "POV"],
  over_the_shoulder: ["Over the shoulder", "OTS"],
};
const CAMERA_MOVEMENTS = {
  static: ["Static", "STATIC"], pan: ["Pan", "PAN"], tilt: ["Tilt", "TILT"],
  dolly_in: ["Dolly in", "DOLLY IN"], dolly_out: ["Dolly out", "DOLLY OUT"],
  truck: ["Truck (alongside)", "TRUCK"], crane: ["Crane", "CRANE"],
  handheld: ["Handheld", "HANDHELD"], zoom_in: ["Zoom in", "ZOOM IN"],
  zoom_out: ["Zoom out", "ZOOM OUT"],
};
const TRANSITIONS = {
  cut: ["Cut", "CUT"], dissolve: ["Dissolve", "DISSOLVE"], fade_in: ["Fade in", "FADE IN"],
  fade_out: ["Fade out", "FADE OUT"], match_cut: ["Match cut", "MATCH CUT"], wipe: ["Wipe", "WIPE"],
};
const SHOT_FIELDS = {
  shot_size: SHOT_SIZES, camera_angle: CAMERA_ANGLES, camera_movement: CAMERA_MOVEMENTS,
  transition: TRANSITIONS,
};
const PLANNER_HINTS = {
  auto: "The service's own choice of planner",
  rules: "Fixed beats: instant, offline and free",
  llm: "A language model writes the story, its characters and the shots",
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

// "characters[0].id" (where the service names an item of a list) reads as "Characters".
function fieldLabel(field) {
  return FIELD_LABELS[field] ?? FIELD_LABELS[field.split(/[[.]/)[0]] ?? field;
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
      message = fields.map((f) => (f.field ? `${fieldLabel(f.field)}: ${f.msg}` : f.msg)).join("\n");
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

const numberFormat = new Intl.NumberFormat();

// Planning costs fractions of a cent: four decimals say something, two would say $0.00.
function formatCost(value) {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) return "";
  if (n < 0.0001) return "< $0.0001";
  return `$${n < 0.1 ? n.toFixed(4) : n.toFixed(2)}`;
}

// "MCU \u00b7 LOW \u00b7 DOLLY IN", as storyboard.shots.shot_line writes it; "" without shot fields.
function shotLine(scene) {
  return [[scene.shot_size, SHOT_SIZES], [scene.camera_angle, CAMERA_ANGLES],
    [scene.camera_movement, CAMERA_MOVEMENTS]]
    .filter(([value]) => value)
    .map(([value, words]) => words[value]?.[1] ?? String(value).toUpperCase())
    .join(" \u00b7 ");
}

// The same shot in words, for the tooltip of its abbreviations.
function shotWords(scene) {
  const parts = [];
  if (scene.shot_size) parts.push(`${SHOT_SIZES[scene.shot_size]?.[0] ?? scene.shot_size} shot`);
  if (scene.camera_angle) parts.push(`${CAMERA_ANGLES[scene.camera_angle]?.[0] ?? scene.camera_angle} angle`);
  if (scene.camera_movement) parts.push(`camera ${(CAMERA_MOVEMENTS[scene.camera_movement]?.[0] ?? scene.camera_movement).toLowerCase()}`);
  if (scene.transition && scene.transition !== "cut") parts.push(`then ${(TRANSITIONS[scene.transition]?.[0] ?? scene.transition).toLowerCase()}`);
  return parts.join(", ");
}

function characterName(plan, id) {
  return plan?.characters?.find((c) => c.id === id)?.name || id;
}

function locationName(plan, id) {
  if (!id) return "";
  return plan?.locations?.find((l) => l.id === id)?.name || id;
}

// Spoken words in curly quotes, once: a plan may already have quoted them.
function quoted(text) {
  const inner = text.trim().replace(/^["\u201c\u201d']+|["\u201c\u201d']+$/g, "").trim();
  return inner ? `\u201c${inner}\u201d` : "";
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

// ---------------------------------------------------------------- Job view

const jobView = byTestId("job-view");
const emptyState = byTestId("empty-state");
const framesList = byTestId("frames");
const actionError = byTestId("action-error");
const approveButton = byTestId("approve");
const cancelButton = byTestId("cancel");
const approvedState = byTestId("approved-state");
const renderButton = byTestId("render-plan");
const staleNotice = byTestId("stale-notice");
const rerenderButton = byTestId("rerender-stale");
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
    text.textContent = `Approved${job.approved_at ? ` \u00b7 ${formatDate(job.approved_at)}` : ""}`;
    approvedState.append(text);
    approvedState.title = job.approved_at ?? "";
  }
  // A plan under review exports too: its sheet of sketches is what a team reviews.
  const exportable = IDLE.has(job.status) && Boolean(job.storyboard?.length);
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
    const src = entry.image_url;
    if (image.getAttribute("src") !== src) image.src = src;
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
  byTestId("frame-beat", card).textContent = scene.beat || beatFor(scene.scene_number, total);
  byTestId("frame-description", card).textContent = scene.description;
  renderShot(card, entry, job);

  renderVersions(card, entry);

  const regenerate = byTestId("regenerate", card);
  const busy = !IDLE.has(job.status);
  const reviewing = job.status === "plan_ready";
  regenerate.disabled = busy;
  setText(regenerate, reviewing ? "Edit shot" : "Regenerate");
  regenerate.title = busy ? "Wait until the storyboard is finished"
    : reviewing ? "Change this shot: its sketch is drawn again at once, for free" : "Draw this frame again";
  const regenForm = byTestId("regenerate-form", card);
  if (!regenForm.dataset.sending) setText(byTestId("regenerate-submit", card), reviewing ? "Update sketch" : "Redraw frame");
  if (busy && !regenForm.hidden && !regenForm.dataset.sending) closeRegenerate(card);
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

// The shot as the plan has it: size, angle and movement, who is in frame and where, what is
// said, and whether the plan changed since the frame was drawn.
function renderShot(card, entry, job) {
  const scene = entry.scene;
  const line = shotLine(scene);
  const shot = byTestId("frame-shot", card);
  setText(shot, line);
  shot.title = shotWords(scene);
  shot.hidden = !line;

  const cast = (scene.characters ?? []).map((id) => characterName(job.plan, id)).join(", ");
  setFact(card, "characters", cast);
  setFact(card, "location", locationName(job.plan, scene.location));
  const dialogue = byTestId("frame-dialogue", card);
  setText(dialogue, scene.dialogue ? quoted(scene.dialogue) : "");
  dialogue.hidden = !dialogue.textContent;

  const stale = Boolean(entry.stale);
  card.dataset.stale = String(stale);
  const mark = byTestId("frame-stale", card);
  mark.hidden = !stale;
  mark.title = "The plan changed since this frame was drawn: its image no longer matches. "
    + "Redraw it to bring it up to date.";
  byTestId("frame-sketch", card).hidden = !(job.status === "plan_ready" && entry.image_url);
}

function setFact(card, name, text) {
  const fact = $(`.frame-fact[data-fact="${name}"]`, card);
  setText($("dd", fact), text);
  fact.hidden = !text;
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
  const scene = entry.scene;
  const plan = state.job?.plan ?? null;
  const regenForm = byTestId("regenerate-form", card);
  // What the form started from: only what the user changes is sent.
  card.regenFrom = structuredClone(scene);
  byTestId("regenerate-description", card).value = scene.description;
  byTestId("regenerate-image-prompt", card).value = scene.image_prompt;
  const shotControls = byTestId("regenerate-shot", card);
  shotControls.hidden = !plan; // a storyboard made before plans has no shot to edit
  if (plan) fillShotControls(card, scene, plan);
  $(".image-prompt-hint", regenForm).textContent = plan ? "(composed from the shot unless you change it)" : "(optional)";
  showError(byTestId("regenerate-error", card), null);
  regenForm.hidden = false;
  for (const box of regenForm.querySelectorAll("textarea")) fitToText(box);
  byTestId("regenerate", card).hidden = true;
  byTestId("regenerate-description", card).focus();
}

function fillSelect(select, words, value, emptyLabel) {
  select.replaceChildren();
  if (!value || !(value in words)) {
    // A scene without this field (or with a word this studio does not know) keeps it as is.
    select.append(new Option(value ? String(value) : emptyLabel, value ?? ""));
  }
  for (const [key, [label, short]] of Object.entries(words)) {
    // The abbreviation first (the frame's shot line uses it), unless the words start with it.
    const text = label.toLowerCase().startsWith(short.toLowerCase()) ? label : `${short} \u2013 ${label}`;
    select.append(new Option(text, key));
  }
  select.value = value ?? "";
}

function fillShotControls(card, scene, plan) {
  for (const select of byTestId("regenerate-shot", card).querySelectorAll("select[data-field]")) {
    fillSelect(select, SHOT_FIELDS[select.dataset.field], scene[select.dataset.field], "Not set");
  }
  byTestId("regenerate-visual", card).value = scene.visual ?? "";
  byTestId("regenerate-lighting", card).value = scene.lighting ?? "";
  byTestId("regenerate-dialogue", card).value = scene.dialogue ?? "";

  const inFrame = new Set(scene.characters ?? []);
  const checks = $(".regen-checks", card);
  checks.replaceChildren();
  for (const character of plan.characters ?? []) {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = character.id;
    box.checked = inFrame.has(character.id);
    box.dataset.testid = "regenerate-character";
    const name = document.createElement("span");
    name.textContent = character.name || character.id;
    label.append(box, name);
    checks.append(label);
  }
  byTestId("regenerate-characters", card).hidden = !plan.characters?.length;

  const location = byTestId("regenerate-location", card);
  location.replaceChildren(new Option("No particular place", ""));
  for (const place of plan.locations ?? []) location.append(new Option(place.name || place.id, place.id));
  if (scene.location && ![...location.options].some((o) => o.value === scene.location)) {
    location.append(new Option(scene.location, scene.location));
  }
  location.value = scene.location ?? "";
  byTestId("regenerate-location-field", card).hidden = !plan.locations?.length && !scene.location;
}

// The shot fields the user changed, as the regenerate endpoint takes them.
function shotChanges(card) {
  const from = card.regenFrom;
  const changes = {};
  for (const select of byTestId("regenerate-shot", card).querySelectorAll("select[data-field]")) {
    const name = select.dataset.field;
    if (select.value && select.value !== (from[name] ?? "")) changes[name] = select.value;
  }
  const visual = byTestId("regenerate-visual", card).value.trim();
  if (visual && visual !== (from.visual ?? "").trim()) changes.visual = visual;
  const lighting = byTestId("regenerate-lighting", card).value.trim();
  if (lighting !== (from.lighting ?? "").trim()) changes.lighting = lighting; // "" clears it
  const dialogue = byTestId("regenerate-dialogue", card).value.trim();
  if (dialogue !== (from.dialogue ?? "").trim()) changes.dialogue = dialogue || null;
  if (!byTestId("regenerate-location-field", card).hidden) {
    const location = byTestId("regenerate-location", card).value;
    if (location !== (from.location ?? "")) changes.location = location || null;
  }
  if (!byTestId("regenerate-characters", card).hidden) {
    const chosen = [...card.querySelectorAll("[data-testid=regenerate-character]:checked")].map((b) => b.value);
    const before = from.characters ?? [];
    const same = chosen.length === before.length && chosen.every((id) => before.includes(id));
    // Who was in frame keeps their order (the first is the subject); newcomers follow.
    if (!same) changes.characters = [...before.filter((id) => chosen.includes(id)), ...chosen.filter((id) => !before.includes(id))];
  }
  return changes;
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
  const from = card.regenFrom ?? entry.scene;
  const description = byTestId("regenerate-description", card).value.trim();
  const imagePrompt = byTestId("regenerate-image-prompt", card).value.trim();
  const body = {};
  if (description && description !== from.description) body.description = description;
  if (imagePrompt && imagePrompt !== from.image_prompt) body.image_prompt = imagePrompt;
  if (!byTestId("regenerate-shot", card).hidden) Object.assign(body, shotChanges(card));
  regenForm.dataset.sending = "1";
  submit.disabled = true;
  try {
    const job = await api(`/jobs/${jobId}/scenes/${entry.scene.scene_number}/regenerate`, { method: "POST", body });
    if (jobId !== state.jobId) return; // the user moved on: leave the job now shown alone
    closeRegenerate(card);
    showError(actionError, null);
    applyJob(job);
    // Under review the sketch is already redrawn: there is no run to follow.
    if (!IDLE.has(job.status)) follow(jobId);
  } catch (error) {
    showError(byTestId("regenerate-error", card), error);
  } finally {
    delete regenForm.dataset.sending;
    submit.disabled = false;
  }
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
    if (live && jobId === state.jobId && !IDLE.has(job.status)) follow(jobId);
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

approveButton.addEventListener("click", () => runAction(approveButton, "approve", "Approving\u2026"));
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
}

function applyJob(job) {
  if (!job || job.job_id !== state.jobId) return; // a late answer about a job no longer shown
  state.job = job;
  renderJob(job);
  updateListItem(job);
  const bar = byTestId("progress-bar");
  if (bar.dataset.fresh) requestAnimationFrame(() => requestAnimationFrame(() => delete bar.dataset.fresh));
}

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

// ---------------------------------------------------------------- Story bible

const bible = byTestId("bible");
const bibleToggle = byTestId("bible-toggle");
const bibleItemTemplate = $("#bible-item-template");
const BIBLE_OPEN_KEY = "storyboard.bible";

// What each kind of entry edits: fields (key in the PATCH body, label, character limit as
// in storyboard/plan.py LIMITS, several lines or one, whether "" is allowed: it clears the
// field), and the PATCH body its changes make.
const BIBLE_KINDS = {
  story: {
    testid: "bible-story",
    fields: [
      { key: "title", label: "Title", max: 120 },
      { key: "logline", label: "Logline", max: 400, multiline: true },
    ],
    body: (changes) => changes,
  },
  character: {
    testid: "bible-character",
    fields: [
      { key: "name", label: "Name", max: 60 },
      { key: "look", label: "Look", max: 400, multiline: true },
    ],
    body: (changes, id) => ({ characters: [{ id, ...changes }] }),
  },
  location: {
    testid: "bible-location",
    fields: [
      { key: "name", label: "Name", max: 60 },
      { key: "look", label: "Look", max: 400, multiline: true },
    ],
    body: (changes, id) => ({ locations: [{ id, ...changes }] }),
  },
  style: {
    testid: "bible-style",
    fields: [
      { key: "look", label: "Look", max: 400, multiline: true, blank: true },
      { key: "palette", label: "Palette", max: 200, blank: true },
      { key: "lighting", label: "Lighting", max: 200, blank: true },
    ],
    body: (changes) => ({ style: changes }),
  },
};

function bibleEntries(plan) {
  const person = (kind) => (item) => ({
    key: `${kind}:${item.id}`, kind, id: item.id, heading: item.name || item.id,
    label: item.name || item.id, values: { name: item.name, look: item.look },
  });
  return {
    story: [{ key: "story", kind: "story", heading: plan.title || "Untitled", label: "the title and logline",
      values: { title: plan.title, logline: plan.logline } }],
    characters: (plan.characters ?? []).map(person("character")),
    locations: (plan.locations ?? []).map(person("location")),
    style: [{ key: "style", kind: "style", heading: "", label: "the style", values: { ...plan.style } }],
  };
}

function renderBible(job) {
  const plan = job.plan;
  bible.hidden = !plan;
  if (!plan) return;
  // The service refuses bible edits while a run works on the job (409).
  const editable = IDLE.has(job.status);
  const entries = bibleEntries(plan);
  syncBibleList(byTestId("bible-story-list"), entries.story, editable);
  syncBibleList(byTestId("bible-characters"), entries.characters, editable);
  syncBibleList(byTestId("bible-locations"), entries.locations, editable);
  syncBibleList(byTestId("bible-style-list"), entries.style, editable);
  byTestId("bible-characters-empty").hidden = entries.characters.length > 0;
  byTestId("bible-locations-empty").hidden = entries.locations.length > 0;
}

// Items are updated in place, keyed by kind and id: an open edit form keeps what is typed in
// it through live updates.
function syncBibleList(list, entries, editable) {
  const items = new Map([...list.children].map((li) => [li.dataset.key, li]));
  entries.forEach((entry, index) => {
    const li = items.get(entry.key) ?? createBibleItem(entry);
    items.delete(entry.key);
    fillBibleItem(li, entry, editable);
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] ?? null);
  });
  for (const li of items.values()) li.remove();
}

function createBibleItem(entry) {
  const li = bibleItemTemplate.content.firstElementChild.cloneNode(true);
  li.dataset.key = entry.key;
  li.dataset.kind = entry.kind;
  li.dataset.testid = BIBLE_KINDS[entry.kind].testid;
  if (entry.id) li.dataset.id = entry.id;
  const form = byTestId("bible-form", li);
  byTestId("bible-edit", li).addEventListener("click", () => openBibleEdit(li));
  byTestId("bible-cancel", li).addEventListener("click", () => closeBibleEdit(li, true));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeBibleEdit(li, true);
  });
  form.addEventListener("submit", (event) => saveBibleEdit(event, li));
  return li;
}

function fillBibleItem(li, entry, editable) {
  li.entry = entry;
  const name = $(".bible-item-name", li);
  setText(name, entry.heading);
  name.hidden = !entry.heading;
  const text = $(".bible-item-text", li);
  if (entry.kind === "style") {
    renderStyleFacts(text, entry.values);
  } else {
    let value = entry.kind === "story" ? entry.values.logline : entry.values.look;
    // A rules plan's logline is its title (the prompt): said once is enough.
    if (entry.kind === "story" && value === entry.values.title) value = "";
    setText(text, value || "");
  }
  const edit = byTestId("bible-edit", li);
  edit.setAttribute("aria-label", `Edit ${entry.label}`);
  edit.disabled = !editable;
  edit.title = editable ? `Edit ${entry.label}` : "Wait until the storyboard is finished";
}

function renderStyleFacts(container, style) {
  const key = JSON.stringify(style);
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  const list = document.createElement("dl");
  list.className = "bible-facts";
  for (const { key: name, label } of BIBLE_KINDS.style.fields) {
    const row = document.createElement("div");
    const term = document.createElement("dt");
    term.textContent = label;
    const value = document.createElement("dd");
    value.textContent = style[name] || "Not set";
    value.classList.toggle("is-empty", !style[name]);
    row.append(term, value);
    list.append(row);
  }
  container.replaceChildren(list);
}

function openBibleEdit(li) {
  const entry = li.entry;
  const form = byTestId("bible-form", li);
  const fields = $(".bible-fields", form);
  fields.replaceChildren();
  li.editFrom = { ...entry.values };
  for (const field of BIBLE_KINDS[entry.kind].fields) {
    const label = document.createElement("label");
    const caption = document.createElement("span");
    caption.textContent = field.label;
    if (field.blank) {
      const unit = document.createElement("span");
      unit.className = "unit";
      unit.textContent = " (may be empty)";
      caption.append(unit);
    }
    const input = document.createElement(field.multiline ? "textarea" : "input");
    if (field.multiline) {
      input.rows = 3;
      input.addEventListener("input", () => fitToText(input));
    } else {
      input.type = "text";
      input.autocomplete = "off";
    }
    input.maxLength = field.max;
    input.name = field.key;
    input.value = entry.values[field.key] ?? "";
    input.dataset.testid = `bible-${field.key}`;
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
    label.append(caption, input);
    fields.append(label);
  }
  showError(byTestId("bible-error", li), null);
  setText(byTestId("bible-status"), "");
  $(".bible-view", li).hidden = true;
  form.hidden = false;
  li.classList.add("is-editing");
  for (const box of form.querySelectorAll("textarea")) fitToText(box);
  fields.querySelector("input, textarea")?.focus();
}

function closeBibleEdit(li, refocus = false) {
  const form = byTestId("bible-form", li);
  const hadFocus = form.contains(document.activeElement);
  form.hidden = true;
  $(".bible-view", li).hidden = false;
  li.classList.remove("is-editing");
  if (refocus || hadFocus) focusAfter(byTestId("bible-edit", li));
}

async function saveBibleEdit(event, li) {
  event.preventDefault();
  const form = byTestId("bible-form", li);
  if (form.dataset.sending) return;
  const entry = li.entry;
  const jobId = state.jobId;
  const kind = BIBLE_KINDS[entry.kind];
  const changes = {};
  const missing = [];
  for (const field of kind.fields) {
    const input = form.querySelector(`[name="${field.key}"]`);
    const value = input.value.trim();
    if (value === (li.editFrom[field.key] ?? "").trim()) continue; // only what changed is sent
    if (!value && !field.blank) {
      input.setAttribute("aria-invalid", "true");
      missing.push(`${field.label}: must not be empty`);
      continue;
    }
    changes[field.key] = value;
  }
  const error = byTestId("bible-error", li);
  if (missing.length) {
    showError(error, missing.join("\n"));
    form.querySelector("[aria-invalid=true]")?.focus();
    return;
  }
  if (!Object.keys(changes).length) {
    closeBibleEdit(li, true);
    return;
  }
  const save = byTestId("bible-save", li);
  form.dataset.sending = "1";
  save.disabled = true;
  save.textContent = "Saving\u2026";
  try {
    const job = await api(`/jobs/${jobId}/plan`, { method: "PATCH", body: kind.body(changes, entry.id) });
    if (jobId !== state.jobId) return;
    closeBibleEdit(li, true);
    applyJob(job);
    announceSaved(job);
  } catch (err) {
    showError(error, err);
  } finally {
    delete form.dataset.sending;
    save.disabled = false;
    save.textContent = "Save";
  }
}

// Says what the save did to the frames, for everyone (a polite live region).
function announceSaved(job) {
  const stale = (job.storyboard ?? []).filter((e) => e.stale).length;
  let text = "Saved";
  if (job.status === "plan_ready") text = "Saved \u00b7 sketches redrawn";
  else if (stale) text = `Saved \u00b7 ${plural(stale, "frame")} to redraw`;
  const status = byTestId("bible-status");
  setText(status, text);
  clearTimeout(status.timer);
  status.timer = setTimeout(() => setText(status, ""), 8000);
}

function clearBible() {
  bible.hidden = true;
  for (const id of ["bible-story-list", "bible-characters", "bible-locations", "bible-style-list"]) {
    byTestId(id).replaceChildren();
  }
  setText(byTestId("bible-status"), "");
  byTestId("planner-fallback").hidden = true;
}

function setBibleOpen(open) {
  bibleToggle.setAttribute("aria-expanded", String(open));
  bibleToggle.textContent = open ? "Hide" : "Show";
  byTestId("bible-body").hidden = !open;
  bible.dataset.open = String(open);
}

bibleToggle.addEventListener("click", () => {
  const open = bibleToggle.getAttribute("aria-expanded") !== "true";
  setBibleOpen(open);
  try { localStorage.setItem(BIBLE_OPEN_KEY, open ? "open" : "closed"); } catch { /* private mode */ }
});

try { setBibleOpen(localStorage.getItem(BIBLE_OPEN_KEY) !== "closed"); } catch { setBibleOpen(true); }

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
      if (IDLE.has(job.status)) {
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
    if (!IDLE.has(job.status)) follow(jobId);
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
  const src = first ? first.image_url : null;
  if (src && thumb.getAttribute("src") !== src) thumb.src = src;
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
  const running = state.list.some((j) => !IDLE.has(j.status) && j.job_id !== state.live?.jobId);
  state.listTimer = setTimeout(() => loadList(), delay ?? (running ? 3000 : 15000));
}

loadMoreButton.addEventListener("click", () => loadList({ more: true }));

// ---------------------------------------------------------------- Start

updatePromptCount();
updateDurationHint();
updatePlannerHint();
updateStyleChips();
loadPlanning();
loadList();
route();
