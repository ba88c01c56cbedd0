// A raw SSE client on node:http: keeps the exact bytes, headers, per-chunk arrival times and
// the time the server closed the connection, parses frames incrementally, and can abort.
import http from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { performance } from 'node:perf_hooks';

/**
 * Parse a complete SSE body (string) into frames {event, data, id, json}.
 * Comment lines (":...") are ignored; frames without data are dropped.
 */
export function parseSSE(text) {
  const out = [];
  const norm = text.replace(/\r\n|\r/g, '\n');
  for (const block of norm.split('\n\n')) {
    const f = parseFrame(block);
    if (f) out.push(f);
  }
  return out;
}

function parseFrame(block) {
  let event = null;
  let id = null;
  const data = [];
  let any = false;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    any = true;
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  if (!any || data.length === 0) return null;
  const d = data.join('\n');
  let json;
  try { json = JSON.parse(d); } catch { json = undefined; }
  return { event: event ?? 'message', data: d, id, json, dataLines: data.length };
}

export class SSEConnection {
  /**
   * @param {string} url full url
   * @param {{headers?: object, method?: string, body?: string|Buffer, timeoutMs?: number}} opts
   *   timeoutMs bounds the whole connection (default 15 s): after it, `done` rejects.
   */
  constructor(url, opts = {}) {
    const u = new URL(url);
    this.url = url;
    this.chunks = []; // {t, buf}
    this.events = []; // parsed frames, each with arrival time t
    this.status = null;
    this.headers = null;
    this.openedAt = performance.now();
    this.endAt = null;   // response 'end' (server finished the body)
    this.closeAt = null; // socket closed
    this.aborted = false;
    this.error = null;
    this._decoder = new StringDecoder('utf8');
    this._pending = '';
    this._waiters = [];
    const headers = { Accept: 'text/event-stream', ...(opts.headers ?? {}) };
    let body = opts.body;
    if (typeof body === 'string') body = Buffer.from(body, 'utf8');
    if (body) headers['Content-Length'] = String(body.length);
    const timeoutMs = opts.timeoutMs ?? 15_000;

    let resolveResp, rejectResp, resolveDone, rejectDone;
    this.response = new Promise((a, b) => { resolveResp = a; rejectResp = b; });
    this.done = new Promise((a, b) => { resolveDone = a; rejectDone = b; });
    // Avoid unhandled rejections if a test never awaits one of them.
    this.response.catch(() => {});
    this.done.catch(() => {});

    this._timer = setTimeout(() => {
      const err = new Error(`SSE ${url} not finished after ${timeoutMs} ms; ` +
        `status ${this.status}; ${this.events.length} frames; last: ${this.events.at(-1)?.data ?? '-'}`);
      this.error = err;
      this.req.destroy();
      rejectResp(err);
      rejectDone(err);
      this._failWaiters(err);
    }, timeoutMs);

    const finish = () => {
      if (this.closeAt !== null) return;
      this.closeAt = performance.now();
      clearTimeout(this._timer);
      const rest = this._decoder.end();
      if (rest) this._feed(rest);
      if (this.error && !this.aborted) { rejectDone(this.error); this._failWaiters(this.error); return; }
      resolveDone(this.result());
      this._failWaiters(new Error(`SSE connection closed; ${this.events.length} frames received`));
    };

    this.req = http.request({
      host: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      method: opts.method ?? 'GET',
      headers,
      agent: false,
    });
    this.req.on('socket', (s) => {
      this.socket = s;
      s.on('close', finish);
    });
    this.req.on('error', (e) => {
      if (this.aborted) return;
      this.error = e;
      rejectResp(e);
    });
    this.req.on('response', (res) => {
      this.res = res;
      this.status = res.statusCode;
      this.headers = res.headers;
      this.responseAt = performance.now();
      resolveResp({ status: res.statusCode, headers: res.headers });
      res.on('data', (buf) => {
        const t = performance.now();
        this.chunks.push({ t, buf });
        this._feed(this._decoder.write(buf), t);
      });
      res.on('end', () => { this.endAt = performance.now(); });
      res.on('error', (e) => { if (!this.aborted) this.error = e; });
    });
    if (body) this.req.end(body); else this.req.end();
  }

  _feed(str, t = performance.now()) {
    this._pending += str;
    for (;;) {
      const norm = this._pending.replace(/\r\n/g, '\n');
      const i = norm.indexOf('\n\n');
      if (i < 0) { this._pending = norm; break; }
      const block = norm.slice(0, i);
      this._pending = norm.slice(i + 2);
      const f = parseFrame(block);
      if (f) {
        f.t = t;
        this.events.push(f);
        this._checkWaiters();
      }
    }
  }

  _checkWaiters() {
    for (const w of [...this._waiters]) {
      const hit = this.events.find((e, idx) => idx >= w.from && w.pred(e, idx));
      if (hit) {
        this._waiters.splice(this._waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(hit);
      }
    }
  }

  _failWaiters(err) {
    for (const w of this._waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  /** Resolves with the first frame (at index >= from) matching pred; rejects after timeoutMs or on close. */
  waitFor(pred, timeoutMs = 5000, from = 0) {
    if (typeof pred === 'string') {
      const type = pred;
      pred = (e) => e.event === type;
    }
    const hit = this.events.find((e, idx) => idx >= from && pred(e, idx));
    if (hit) return Promise.resolve(hit);
    if (this.closeAt !== null) return Promise.reject(new Error(`SSE already closed; ${this.events.length} frames`));
    return new Promise((resolve, reject) => {
      const w = { pred, from, resolve, reject };
      w.timer = setTimeout(() => {
        this._waiters.splice(this._waiters.indexOf(w), 1);
        reject(new Error(`waitFor timed out after ${timeoutMs} ms; ${this.events.length} frames; ` +
          `last: ${this.events.at(-1)?.data ?? '-'}`));
      }, timeoutMs);
      this._waiters.push(w);
    });
  }

  /** Resolves once at least n frames (optionally of one event type) were received. */
  waitForCount(n, timeoutMs = 5000, type = null) {
    const match = (e) => type === null || e.event === type;
    return this.waitFor((e, idx) => match(e) && this.events.slice(0, idx + 1).filter(match).length >= n, timeoutMs);
  }

  body() { return Buffer.concat(this.chunks.map((c) => c.buf)); }
  text() { return this.body().toString('utf8'); }
  /** Stored events only (pings dropped). */
  stored() { return this.events.filter((e) => e.event !== 'ping'); }

  result() {
    return {
      status: this.status,
      headers: this.headers,
      body: this.body(),
      text: this.text(),
      events: this.events,
      stored: this.stored(),
      endAt: this.endAt,
      closeAt: this.closeAt,
      aborted: this.aborted,
    };
  }

  /** Client-side disconnect. */
  abort() {
    this.aborted = true;
    this.req.destroy();
    if (this.res) this.res.destroy();
  }
}

export function openSSE(url, opts) {
  return new SSEConnection(url, opts);
}

/** Opens, waits for the end, returns the result (rejects on timeout). */
export async function readSSE(url, opts) {
  return openSSE(url, opts).done;
}

/** Concatenated text of all text_delta deltas (optionally for one block index). */
export function textOf(events, index = null) {
  return events
    .filter((e) => e.json?.type === 'content_block_delta' && e.json.delta?.type === 'text_delta' &&
      (index === null || e.json.index === index))
    .map((e) => e.json.delta.text)
    .join('');
}

export function thinkingOf(events) {
  return events
    .filter((e) => e.json?.type === 'content_block_delta' && e.json.delta?.type === 'thinking_delta')
    .map((e) => e.json.delta.thinking)
    .join('');
}

/** Remove per-stream varying parts so two logs can be compared structurally. */
export function types(events) {
  return events.map((e) => e.event);
}
