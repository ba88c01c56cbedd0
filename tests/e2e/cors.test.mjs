// SPEC §6 "Browsers": CORS (off by default; cors_origins answers preflights before auth on every
// route and lets the listed origins read every answer, SSE included).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, ASYNC } from './lib/http.mjs';

const SECRET = 'Bearer sk-cors';
const APP = 'https://app.example.test';
let srv;
let off;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '1', '--auth-secret', SECRET, '--cors-origins', `${APP},http://localhost:5173`]);
  off = await startServer(['--mock-token-delay-ms', '1', '--auth-secret', SECRET]);
});
after(async () => { await srv.stop(); await off.stop(); });

const preflight = (origin, method = 'POST', headers = 'authorization, content-type') => ({
  Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers,
});

test('a preflight from a listed origin is 204 before auth, on every route', async () => {
  const c = client(srv.url);
  for (const [method, path] of [['POST', ASYNC], ['GET', `${ASYNC}/any/stream`], ['GET', `${ASYNC}/any/status`],
    ['POST', `${ASYNC}/any/cancel`], ['DELETE', `${ASYNC}/any/delete`], ['POST', '/v1/messages'], ['GET', '/health']]) {
    const r = await c.request('OPTIONS', path, { headers: preflight(APP, method) });
    assert.equal(r.status, 204, `${method} ${path}: ${r.text}`);
    assert.equal(r.headers['access-control-allow-origin'], APP);
    assert.equal(r.headers['access-control-allow-methods'], 'GET, POST, DELETE, OPTIONS');
    assert.match(r.headers['access-control-allow-headers'], /^Authorization, Content-Type, Last-Event-ID, Idempotency-Key, X-Request-Id/);
    assert.equal(r.headers['access-control-max-age'], '600');
    assert.equal(r.headers.vary, 'Origin');
    assert.equal(r.text, '');
  }
});

test('a preflight from another origin is 403 and allows nothing; with CORS off OPTIONS is 401 as before', async () => {
  const r = await client(srv.url).request('OPTIONS', ASYNC, { headers: preflight('https://evil.test') });
  assert.equal(r.status, 403);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.headers['access-control-allow-methods'], undefined);
  const o = await client(off.url).request('OPTIONS', ASYNC, { headers: preflight(APP) });
  assert.equal(o.status, 401);
  assert.equal(o.headers['access-control-allow-origin'], undefined);
  assert.equal(o.headers.vary, undefined);
});

test('answers to a listed origin carry Allow-Origin, expose request-id and vary on Origin, SSE and errors included', async () => {
  const c = client(srv.url, { Authorization: SECRET, Origin: APP });
  const id = `cors-${process.pid}`;
  const started = await c.start(chat('hello from a page'), id);
  assert.equal(started.status, 200, started.text);
  assert.equal(started.headers['access-control-allow-origin'], APP);
  assert.equal(started.headers['access-control-expose-headers'], 'request-id');
  assert.equal(started.headers.vary, 'Origin');
  await waitStatus(c, id, 'completed');
  const stream = await c.request('GET', `${ASYNC}/${id}/stream`);
  assert.equal(stream.status, 200);
  assert.match(stream.headers['content-type'], /^text\/event-stream/);
  assert.equal(stream.headers['access-control-allow-origin'], APP);
  assert.ok(stream.headers['request-id'], 'an SSE answer carries request-id too');
  const unauth = await client(srv.url, { Origin: APP }).request('GET', `${ASYNC}/${id}/status`);
  assert.equal(unauth.status, 401);
  assert.equal(unauth.headers['access-control-allow-origin'], APP, 'the page can read why it was refused');
  const other = await client(srv.url, { Authorization: SECRET, Origin: 'https://evil.test' }).request('GET', `${ASYNC}/${id}/status`);
  assert.equal(other.status, 200, 'CORS is the browser\'s rule: the secret still works from anywhere');
  assert.equal(other.headers['access-control-allow-origin'], undefined);
  assert.equal(other.headers.vary, 'Origin');
});

test('a malformed cors_origins value stops the start with a message naming it', async () => {
  await assert.rejects(startServer(['--cors-origins', 'app.example.test']), /cors_origins: 'app\.example\.test' is not an origin/);
});
