// What the studio knows right now, shared by its modules: the job on screen, how it is followed
// live, its frame cards, and the sidebar's list. One object, so every module sees the same.

export const state = {
  jobId: null, // the job on screen
  job: null, // its latest JobResponse
  live: null, // {jobId, source, timer, closed}: the stream or poll following it
  cards: new Map(), // scene number -> frame element
  list: [], // job summaries in the sidebar, newest first
  listTotal: 0,
  listTimer: null,
};
