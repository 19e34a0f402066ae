// Following the job on screen while a run works on it: server-sent events, or a poll once a
// second when the stream fails. Every job that arrives goes to the caller's onJob.

import { API, api } from "./api.js";
import { signed } from "./auth.js";
import { scheduleListRefresh, updateListItem } from "./list.js";
import { state } from "./state.js";
import { IDLE } from "./status.js";

const POLL_MS = 1000;

export function stopLive() {
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
// onJob draws each job that arrives: it is handed in because the job view, which draws, is
// also the one that starts following.
export function follow(jobId, onJob) {
  stopLive();
  const live = { jobId, source: null, timer: null, closed: false };
  state.live = live;
  if (!("EventSource" in window)) {
    poll(live, onJob);
    return;
  }
  // EventSource cannot send the token: the job's signed access value goes in the URL.
  const access = state.job?.job_id === jobId ? state.job.access : null;
  const source = new EventSource(signed(`${API}/jobs/${jobId}/events`, access));
  live.source = source;
  const receive = (event) => {
    if (live.closed) return null;
    let job;
    try { job = JSON.parse(event.data); } catch { return null; }
    onJob(job);
    return job;
  };
  source.addEventListener("progress", receive);
  source.addEventListener("message", receive);
  source.addEventListener("done", (event) => {
    const job = receive(event);
    source.close(); // the service ends the stream now: its "error" must not start a poll
    // The signed value shows what its holder may see: an owner's has the costs, a
    // reviewer's does not.
    finished(live, job);
  });
  source.addEventListener("error", () => {
    if (live.closed) return;
    source.close();
    live.source = null;
    poll(live, onJob);
  });
}

function poll(live, onJob) {
  const tick = async () => {
    if (live.closed) return;
    try {
      const job = await api(`/jobs/${live.jobId}`);
      if (live.closed) return;
      onJob(job);
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
