// A job's status: which ones are over or waiting on the user, their names for people, and the
// badge that shows them (in the job header and in the sidebar list alike).

export const FINAL = new Set(["storyboard_ready", "failed", "cancelled"]);
// No run works on these jobs: final, or a plan waiting for the user to render it. Nothing
// more arrives on its own, so nothing is followed live.
export const IDLE = new Set([...FINAL, "plan_ready"]);
const STATUS_LABELS = {
  pending: "Queued",
  parsing: "Planning scenes",
  plan_ready: "Plan ready",
  generating_storyboard: "Generating",
  storyboard_ready: "Ready for review",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function statusLabel(job) {
  if (job.status === "storyboard_ready" && job.approved) return "Approved";
  return STATUS_LABELS[job.status] ?? job.status;
}

export function setBadge(element, job) {
  element.dataset.status = job.status;
  element.dataset.approved = String(Boolean(job.approved));
  element.textContent = statusLabel(job);
  element.title = job.status;
}
