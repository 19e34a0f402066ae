// The regenerate form of a frame card: a new description or image prompt, and on a planned
// storyboard the shot itself (size, angle, movement, cast, place, dialogue). Only what the
// user changed is sent; under plan review the answer is a redrawn sketch, otherwise a run.

import { api } from "./api.js";
import { $, byTestId, fitToText, focusAfter, showError } from "./dom.js";
import { SHOT_FIELDS } from "./shots.js";
import { state } from "./state.js";
import { IDLE } from "./status.js";

// The job view (job.js) draws a redraw's answer and follows its run. job.js imports this
// module, so it hands those two in here instead of being imported back.
let view = null;

export function connectRegenerate({ applyJob, follow }) {
  view = { applyJob, follow };
}

export function openRegenerate(card) {
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

export function closeRegenerate(card, refocus = false) {
  const regenForm = byTestId("regenerate-form", card);
  const hadFocus = regenForm.contains(document.activeElement);
  regenForm.hidden = true;
  byTestId("regenerate", card).hidden = false;
  // Focus would fall to <body> with the form: back to where the user started from.
  if (refocus || hadFocus) focusAfter(byTestId("regenerate", card));
}

export async function submitRegenerate(event, card) {
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
    showError(byTestId("action-error"), null);
    view.applyJob(job);
    // Under review the sketch is already redrawn: there is no run to follow.
    if (!IDLE.has(job.status)) view.follow(jobId);
  } catch (error) {
    showError(byTestId("regenerate-error", card), error);
  } finally {
    delete regenForm.dataset.sending;
    submit.disabled = false;
  }
}
