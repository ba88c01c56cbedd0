// Small HTTP helpers on node:http (so tests control every byte and header).
import http from 'node:http';
import net from 'node:net';

export const ASYNC = '/v1/messages/async';

/**
 * request(base, method, path, opts) -> {status, headers, raw, text, json}
 * opts.json: value to send as JSON (sets content-type application/json)
 * opts.body: string | Buffer sent as is (content-type only if opts.headers sets it)
 * opts.headers, opts.timeoutMs (default 10 s), opts.agent (default: a fresh connection)
 */
export function request(base, method, path, opts = {}) {
  const u = new URL(path, base);
  const headers = { ...(opts.headers ?? {}) };
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
      headers['Content-Type'] = 'application/json';
    }
  }
  if (body !== undefined && typeof body === 'string') body = Buffer.from(body, 'utf8');
  if (body !== undefined) headers['Content-Length'] = String(body.length);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname,
      port: u.port,
      method,
      path: u.pathname + u.search,
      headers,
      agent: opts.agent ?? false,
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    let writeError = null;
    req.on('error', (e) => {
      // A server that answers early (413) may reset while we still write; the response wins.
      writeError = e;
      if (!req.res) { clearTimeout(timer); reject(e); }
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
      res.on('end', () => {
        clearTimeout(timer);
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json;
        try { json = text.length ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, raw, text, json, writeError, socket: req.socket });
      });
    });
    if (body !== undefined) req.end(body); else req.end();
  });
}

/** Convenience wrapper bound to one server url. */
export function client(base, defaultHeaders = {}) {
  const r = (method, path, opts = {}) =>
    request(base, method, path, { ...opts, headers: { ...defaultHeaders, ...(opts.headers ?? {}) } });
  return {
    base,
    request: r,
    get: (p, o) => r('GET', p, o),
    post: (p, json, o = {}) => r('POST', p, json === undefined ? o : { ...o, json }),
    del: (p, o) => r('DELETE', p, o),
    start: (body, id, o = {}) => r('POST', ASYNC + (id !== undefined ? `?message_id=${encodeURIComponent(id)}` : ''), { ...o, json: body }),
    status: (id, o) => r('GET', `${ASYNC}/${encodeURIComponent(id)}/status`, o),
    cancel: (id, o) => r('POST', `${ASYNC}/${encodeURIComponent(id)}/cancel`, o),
    remove: (id, o) => r('DELETE', `${ASYNC}/${encodeURIComponent(id)}/delete`, o),
    metrics: async () => (await r('GET', '/metrics')).text,
  };
}

/** Reads one gauge/counter value from Prometheus text (first matching line). */
export function metricValue(text, name, labels = '') {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    if (m[1] !== name) continue;
    if (labels && (m[2] ?? '') !== `{${labels}}`) continue;
    return Number(m[3]);
  }
  return undefined;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn() until it returns a truthy value; throws with `what` after timeoutMs. */
export async function waitUntil(fn, { timeoutMs = 5000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(intervalMs);
  }
}

/** Opens a raw TCP connection; resolves once connected. */
export function rawConnect(base) {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** A chat body with one user message. */
export function chat(text, extra = {}) {
  return { model: 'default', max_tokens: 1000, messages: [{ role: 'user', content: text }], ...extra };
}

/** n distinct words separated by single spaces. */
export function words(n, prefix = 'w') {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(' ');
}

/** Asserts the §5 error body shape; returns the body. */
export function assertErrorBody(assert, res, status, type, { requestId } = {}) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, 'error body must be application/json');
  const b = res.json;
  assert.ok(b && typeof b === 'object', `error body is not JSON: ${res.text}`);
  assert.equal(b.type, 'error', `body.type: ${res.text}`);
  assert.ok(b.error && typeof b.error === 'object', `body.error: ${res.text}`);
  assert.equal(b.error.type, type, `body.error.type: ${res.text}`);
  assert.equal(typeof b.error.message, 'string', `body.error.message: ${res.text}`);
  assert.ok(b.error.detail && typeof b.error.detail === 'object', `body.error.detail: ${res.text}`);
  assert.equal(typeof b.error.detail.code, 'string', `body.error.detail.code: ${res.text}`);
  assert.ok('explanation' in b.error.detail, `body.error.detail.explanation: ${res.text}`);
  assert.ok('request_id' in b, `body.request_id missing: ${res.text}`);
  if (requestId !== undefined) assert.equal(b.request_id, requestId);
  else assert.ok(b.request_id === null || typeof b.request_id === 'string', `request_id: ${res.text}`);
  assert.ok(b.exception && typeof b.exception === 'object', `body.exception: ${res.text}`);
  assert.equal(typeof b.exception.type, 'string', `body.exception.type: ${res.text}`);
  assert.equal(typeof b.exception.message, 'string', `body.exception.message: ${res.text}`);
  assert.ok('detail' in b, `body.detail: ${res.text}`);
  assert.deepEqual(b.detail, b.error.detail.explanation, 'body.detail must equal error.detail.explanation');
  if (type === 'invalid_request_error') {
    assert.match(b.error.message, /^Invalid Request Error: ./, res.text);  // §5: M carries the reason
    assert.equal(b.error.detail.code, 'INVALID_REQUEST_ERROR', res.text);
  }
  assert.ok(!/\bat .*\(.*:\d+:\d+\)|Traceback|std::|terminate called/.test(res.text), `error body leaks internals: ${res.text}`);
  return b;
}

/** Asserts a §5 schema failure: detail is a list of {type, loc, msg} and some loc names `field`. */
export function assertSchemaError(assert, res, field) {
  const b = assertErrorBody(assert, res, 400, 'invalid_request_error');
  assert.ok(Array.isArray(b.detail), `schema failure: detail must be a list, got ${JSON.stringify(b.detail)}`);
  assert.ok(b.detail.length > 0, 'schema failure: detail list is empty');
  for (const d of b.detail) {
    assert.equal(typeof d.type, 'string', `detail entry type: ${JSON.stringify(d)}`);
    assert.ok(Array.isArray(d.loc), `detail entry loc must be a list: ${JSON.stringify(d)}`);
    assert.equal(typeof d.msg, 'string', `detail entry msg: ${JSON.stringify(d)}`);
  }
  if (field !== undefined) {
    assert.ok(b.detail.some((d) => d.loc.map(String).includes(field)),
      `some detail loc must name field "${field}": ${JSON.stringify(b.detail)}`);
  }
  return b;
}

export const TERMINAL = ['completed', 'cancelled', 'error'];

/** Polls the status route until status is one of `wanted`; returns the status body. */
export async function waitStatus(c, id, wanted = TERMINAL, timeoutMs = 10_000) {
  const want = Array.isArray(wanted) ? wanted : [wanted];
  return waitUntil(async () => {
    const r = await c.status(id);
    return r.status === 200 && want.includes(r.json.status) ? r.json : null;
  }, { timeoutMs, intervalMs: 15, what: `stream ${id} to reach ${want.join('|')}` });
}

export function streamUrl(base, id, query = '') {
  return `${base}${ASYNC}/${encodeURIComponent(id)}/stream${query}`;
}
