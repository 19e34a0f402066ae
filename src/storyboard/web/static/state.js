// What the studio knows right now, shared by its modules: who is using it, the job on screen,
// how it is followed live, its frame cards and comments, and the sidebar's list. One object, so
// every module sees the same.

export const state = {
  me: null, // GET /whoami: who is calling, and what they may do
  jobId: null, // the job on screen
  job: null, // its latest JobResponse
  live: null, // {jobId, source, timer, closed}: the stream or poll following it
  cards: new Map(), // scene number -> frame element
  comments: [], // the job on screen's comments, oldest first
  list: [], // job summaries in the sidebar, newest first
  listTotal: 0,
  listTimer: null,
};
