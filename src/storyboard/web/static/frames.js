// The frame cards of the job on screen, one per scene in scene order: image or placeholder,
// the shot as planned, earlier versions, and the button that opens the regenerate form.

import { $, byTestId, fitToText, setText } from "./dom.js";
import { formatAgo, formatSeconds, plural, quoted, ratioOf } from "./format.js";
import { closeRegenerate, openRegenerate, submitRegenerate } from "./regenerate.js";
import { beatFor } from "./scenes.js";
import { shotLine, shotWords } from "./shots.js";
import { state } from "./state.js";
import { FINAL, IDLE } from "./status.js";

const framesList = byTestId("frames");
const frameTemplate = $("#frame-template");

// Frames are updated in place, keyed by scene number, so images don't flicker and an open
// regenerate form survives progress updates.
export function renderFrames(job) {
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

// Another job is opened: none of this one's cards may be reused for it.
export function clearFrames() {
  state.cards.clear();
  framesList.replaceChildren();
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

function characterName(plan, id) {
  return plan?.characters?.find((c) => c.id === id)?.name || id;
}

function locationName(plan, id) {
  if (!id) return "";
  return plan?.locations?.find((l) => l.id === id)?.name || id;
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
