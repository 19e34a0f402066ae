// The sidebar's list of storyboards: newest first, paged with "Show older", refreshed on a
// timer so jobs started elsewhere appear and move, and kept in step with the job on screen.

import { api } from "./api.js";
import { $, byTestId } from "./dom.js";
import { formatAgo, plural } from "./format.js";
import { state } from "./state.js";
import { IDLE, setBadge } from "./status.js";

const LIST_PAGE = 30;

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

export function markCurrentInList() {
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

export function updateListItem(job) {
  const index = state.list.findIndex((j) => j.job_id === job.job_id);
  if (index === -1) return;
  state.list[index] = job;
  const link = jobList.querySelector(`.job-item[data-job-id="${job.job_id}"]`);
  if (link) fillListItem(link.parentElement, job);
}

export async function loadList({ more = false } = {}) {
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
export function scheduleListRefresh(delay) {
  clearTimeout(state.listTimer);
  const running = state.list.some((j) => !IDLE.has(j.status) && j.job_id !== state.live?.jobId);
  state.listTimer = setTimeout(() => loadList(), delay ?? (running ? 3000 : 15000));
}

loadMoreButton.addEventListener("click", () => loadList({ more: true }));
