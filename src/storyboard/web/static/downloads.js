// The job's exports as links (PDF sheet, ZIP, CSV shot list, MP4 animatic). A link cannot send
// the bearer token, so once the server has tokens each URL carries the job's signed ``access``.

import { API } from "./api.js";
import { signed } from "./auth.js";
import { byTestId } from "./dom.js";
import { IDLE } from "./status.js";

const LINKS = { "export-pdf": "pdf", "export-zip": "zip", "export-csv": "csv" };

export function exportUrl(job, kind) {
  return signed(`${API}/jobs/${job.job_id}/export.${kind}`, job.access);
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

export function renderDownloads(job) {
  // A plan under review exports too: its sheet of sketches is what a team reviews.
  const exportable = IDLE.has(job.status) && Boolean(job.storyboard?.length);
  for (const [testId, kind] of Object.entries(LINKS)) {
    setLink(byTestId(testId), exportUrl(job, kind), exportable);
  }
}

export function clearDownloads() {
  for (const testId of Object.keys(LINKS)) setLink(byTestId(testId), "", false);
}
