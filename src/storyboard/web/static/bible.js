// The story bible panel of a planned job: title and logline, characters, locations and style,
// each edited in place (PATCH /jobs/{id}/plan), and the panel's remembered open or closed state.

import { api } from "./api.js";
import { $, byTestId, fitToText, focusAfter, setText, showError } from "./dom.js";
import { plural } from "./format.js";
import { state } from "./state.js";
import { IDLE } from "./status.js";

const bible = byTestId("bible");
const bibleToggle = byTestId("bible-toggle");
const bibleItemTemplate = $("#bible-item-template");
const BIBLE_OPEN_KEY = "storyboard.bible";

// The job view draws a saved edit's answer. It imports this module, so it hands applyJob in
// here instead of being imported back.
let view = null;

export function connectBible({ applyJob }) {
  view = { applyJob };
}

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

export function renderBible(job) {
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
    view.applyJob(job);
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

export function clearBible() {
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
