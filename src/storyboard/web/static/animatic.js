// The animatic played in the page: the board as a video (each frame held for its scene, the
// camera's move, captions), with a link to download it. The service renders it on the first
// request, which takes a few seconds: the panel says so until the video's metadata arrives,
// or says why it could not be played.

import { authHeaders } from "./auth.js";
import { byTestId, focusAfter, setText } from "./dom.js";
import { exportUrl } from "./downloads.js";
import { state } from "./state.js";

const button = byTestId("animatic");
const panel = byTestId("animatic-panel");
const video = byTestId("animatic-player");
const status = byTestId("animatic-status");
const download = byTestId("animatic-download");

// Only a finished board is worth playing: while frames are drawn it would render half of it.
export function renderAnimatic(job) {
  const ready = job.status === "storyboard_ready" && Boolean(job.storyboard?.length);
  button.hidden = !ready;
  if (!ready && !panel.hidden) closeAnimatic();
}

// Another job is opened: nothing of this one's video stays.
export function clearAnimatic() {
  closeAnimatic();
  button.hidden = true;
}

function openAnimatic() {
  const job = state.job;
  if (!job) return;
  const url = exportUrl(job, "mp4");
  // The URL stays the same as the board changes: the job's last change keeps a redrawn board
  // from being played out of the browser's cache.
  const version = `v=${encodeURIComponent(job.updated_at ?? "")}`;
  panel.hidden = false;
  panel.dataset.state = "rendering";
  button.setAttribute("aria-expanded", "true");
  setText(status, "Rendering the animatic\u2026 the first time takes a few seconds.");
  status.hidden = false;
  download.href = url;
  video.src = `${url}${url.includes("?") ? "&" : "?"}${version}`;
  video.load();
}

function closeAnimatic() {
  const hadFocus = panel.contains(document.activeElement);
  panel.hidden = true;
  delete panel.dataset.state;
  button.setAttribute("aria-expanded", "false");
  video.pause();
  video.removeAttribute("src");
  video.load(); // stops fetching a video no longer shown
  if (hadFocus) focusAfter(button);
}

// A <video> says only that it failed: the service's own answer says why (a Range of one byte,
// so a playable file is not fetched whole to find that out).
async function failureReason(url) {
  try {
    const answer = await fetch(url, { headers: { Range: "bytes=0-0", ...authHeaders() } });
    if (!answer.ok) {
      const data = await answer.json().catch(() => null);
      return typeof data?.detail === "string" ? data.detail : `the service answered ${answer.status}`;
    }
  } catch {
    return "the Storyboard service cannot be reached";
  }
  return "this browser cannot play it; download the MP4 instead";
}

video.addEventListener("loadedmetadata", () => {
  panel.dataset.state = "ready";
  status.hidden = true;
});

video.addEventListener("error", async () => {
  const src = video.getAttribute("src");
  if (panel.hidden || !src) return; // the player was closed: nothing failed
  panel.dataset.state = "failed";
  setText(status, "Checking why the animatic did not load\u2026");
  const reason = await failureReason(src);
  if (video.getAttribute("src") !== src) return; // opened again meanwhile
  setText(status, `The animatic could not be played: ${reason.replace(/\.$/, "")}.`);
});

button.addEventListener("click", () => (panel.hidden ? openAnimatic() : closeAnimatic()));
byTestId("animatic-close").addEventListener("click", closeAnimatic);
