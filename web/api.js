// Spool's HTTP API as the playground uses it: JSON calls and an SSE reader that resumes.
// Every URL is relative to the page, so the playground also works under a path prefix.

/** A failed call. kind: 'unreachable' | 'unauthorized' | 'not_found' | 'http' */
export class ApiError extends Error {
  constructor(kind, message, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** The explanation of a §5 error body (or of a 404/401 `detail`), else the status text. */
export function errorText(body, status) {
  if (body && typeof body === 'object') {
    const e = body.error;
    if (e && e.detail && typeof e.detail.explanation === 'string') return e.detail.explanation;
    if (e && e.detail && Array.isArray(e.detail.explanation)) {
      return e.detail.explanation.map((x) => `${(x.loc || []).join('.')}: ${x.msg}`).join('; ');
    }
    if (typeof body.detail === 'string') return body.detail;
    if (e && typeof e.message === 'string') return e.message;
  }
  return `HTTP ${status}`;
}

/** A client for the Spool serving this page; `secret()` returns the Authorization value or ''. */
export class SpoolClient {
  constructor(secret) {
    this.secret = secret;
  }

  headers(extra = {}) {
    const h = { ...extra };
    const s = this.secret();
    if (s) h.Authorization = s;
    return h;
  }

  async call(method, path, body) {
    let res;
    const init = { method, headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError('unreachable', `Cannot reach the Spool server (${e.message}).`);
    }
    return readJson(res);
  }

  models() { return this.call('GET', 'v1/models'); }
  start(body) { return this.call('POST', 'v1/messages/async', body); }
  status(id) { return this.call('GET', `v1/messages/async/${encodeURIComponent(id)}/status`); }
  cancel(id) { return this.call('POST', `v1/messages/async/${encodeURIComponent(id)}/cancel`); }
  remove(id) { return this.call('DELETE', `v1/messages/async/${encodeURIComponent(id)}/delete`); }
  list(limit, cursor) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    return this.call('GET', `v1/messages/async?${q}`);
  }

  /**
   * Reads job `id`'s events after position `after` until its terminal event, reconnecting with
   * Last-Event-ID when the connection drops. A position is an event's SSE id as the server wrote it
   * ("N", or "N.I" in a reused id's later incarnation I; 0: none). Calls onEvent(type, data, position) for each event
   * and onConnection(state) with 'open' | 'reconnecting'. Resolves when the stream is complete;
   * rejects with an ApiError (not_found when the job is gone, unauthorized, http: status 409 when
   * `after` is of an earlier job of the same id, deleted since) or when `signal`
   * aborts (an AbortError).
   */
  async watch(id, after, { onEvent, onConnection, signal }) {
    let position = after;
    let delay = 250;
    for (;;) {
      let res;
      try {
        res = await fetch(`v1/messages/async/${encodeURIComponent(id)}/stream`, {
          headers: this.headers({ 'Last-Event-ID': String(position), Accept: 'text/event-stream' }),
          signal,
          cache: 'no-store',
        });
      } catch (e) {
        if (signal.aborted) throw e;
        onConnection('reconnecting');
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 3000);
        continue;
      }
      if (res.status === 204) return;  // nothing after `position` and the job is over
      if (!res.ok) await readJson(res);  // throws the ApiError
      onConnection('open');
      delay = 250;
      let ended = false;
      try {
        await readSse(res.body, signal, (type, data, eventId) => {
          if (eventId !== null) position = eventId;
          if (type === 'ping') return;
          onEvent(type, data, position);
          if (type === 'message_stop' || type === 'error') ended = true;
        });
      } catch (e) {
        if (signal.aborted) throw e;
      }
      if (ended) return;
      if (signal.aborted) throw new DOMException('aborted', 'AbortError');
      onConnection('reconnecting');
      await sleep(delay, signal);
    }
  }
}

async function readJson(res) {
  let body = null;
  const text = await res.text().catch(() => '');
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (res.ok) return body;
  if (res.status === 401) {
    throw new ApiError('unauthorized', 'Not authenticated: enter the server\'s secret (the whole Authorization value, e.g. "Bearer sk-…") above.', 401);
  }
  if (res.status === 404) throw new ApiError('not_found', errorText(body, 404), 404);
  throw new ApiError('http', `${errorText(body, res.status)} (HTTP ${res.status})`, res.status);
}

/** Parses an SSE body: calls onFrame(event, parsedData, id string or null) per dispatched event. */
async function readSse(stream, signal, onFrame) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let event = '';
  let data = [];
  let id = null;
  const abort = () => reader.cancel().catch(() => {});
  signal.addEventListener('abort', abort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        if (nl === buf.length - 1 && buf[nl] === '\r') break;  // maybe the first half of \r\n
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length) onFrame(event || 'message', JSON.parse(data.join('\n')), id);
          event = '';
          data = [];
          id = null;
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id' && /^\d+(\.\d+)?$/.test(value)) id = value;  // kept whole: "N" or "N.I"
      }
    }
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new DOMException('aborted', 'AbortError'));
      return;
    }
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); },
      { once: true });
  });
}
