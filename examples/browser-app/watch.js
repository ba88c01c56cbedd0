// Watching a Spool job from a browser: the part to copy into your own page.
//
// A job is {message_id, stream_url, status_url} as the backend (or a direct start) gave it, where
// both URLs carry ?read_token=. The page's state lives in sessionStorage, so a reload continues
// where it was: it opens the stream again with &last_event_id=<the last id seen> and gets only
// what came after. A cut connection needs nothing at all: EventSource reconnects by itself and
// sends Last-Event-ID, and Spool sends only what the page has not seen.

const KEY = 'spool-example-job';
// The stored event types (pings have no id and need no handling).
const TYPES = ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop',
  'message_delta', 'message_stop'];

/** The job this tab was watching before a reload, or null. */
export function savedJob() {
  try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
}

/** Forgets the saved job. */
export function forgetJob() {
  sessionStorage.removeItem(KEY);
}

/** The job's status, read with its token: {status, metadata, …}; throws with a readable reason. */
export async function readStatus(job) {
  let res;
  try {
    res = await fetch(job.status_url);
  } catch (e) {  // a TypeError: no answer, or one this page may not read
    throw new Error(`Spool cannot be read from this page (${e.message}): it is down, or this origin ` +
      `(${location.origin}) is not in its cors_origins`);
  }
  if (res.status === 401) throw new Error('Not authenticated: the read token is not valid (expired, or for another job)');
  if (res.status === 404) throw new Error('The job is gone (deleted or expired)');
  if (!res.ok) throw new Error(`status: HTTP ${res.status}`);
  return res.json();
}

/**
 * Watches `job` (a new one, or savedJob() after a reload) and calls show(job) whenever it changed:
 * job.text (the answer so far), job.conn ('connecting' | 'open' | 'reconnecting' | 'closed'),
 * job.stop_reason, job.done, job.error, job.status (the last status read).
 * Returns the EventSource (close() it to stop watching).
 */
export function watch(job, show) {
  job.text ??= '';
  job.last ??= null;
  const update = () => {
    sessionStorage.setItem(KEY, JSON.stringify(job));
    show(job);
  };
  const refreshStatus = () => readStatus(job).then((s) => { job.status = s; update(); },
    (e) => { job.error ??= e.message; update(); });

  // Only what came after the last event this tab saw (none: from the start).
  const url = job.last ? `${job.stream_url}&last_event_id=${encodeURIComponent(job.last)}` : job.stream_url;
  const es = new EventSource(url);
  job.conn = 'connecting';
  update();

  const onEvent = (e) => {
    const ev = JSON.parse(e.data);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') job.text += ev.delta.text;
    if (ev.type === 'message_delta') job.stop_reason = ev.delta.stop_reason;
    job.last = e.lastEventId;
    if (ev.type === 'message_stop') finish();
    update();
  };
  for (const t of TYPES) es.addEventListener(t, onEvent);

  function finish() {
    es.close();
    job.done = true;
    job.conn = 'closed';
    refreshStatus();
  }

  es.onopen = () => { job.conn = 'open'; update(); };
  es.addEventListener('error', (e) => {
    if (e.data) {  // Spool's own `event: error`: the job failed (no message_stop follows)
      const ev = JSON.parse(e.data);
      job.error = ev.error?.message ?? 'the job failed';
      job.last = e.lastEventId;
      finish();
      update();
    } else if (es.readyState === EventSource.CONNECTING) {  // cut: the browser reconnects by itself
      job.conn = 'reconnecting';
      update();
    } else {  // refused (401, 404, 409, a CORS error): the status read says why
      job.conn = 'closed';
      update();
      refreshStatus().then(() => {
        if (!job.done) { job.error ??= 'Spool refused the stream'; update(); }
      });
    }
  });
  return es;
}
