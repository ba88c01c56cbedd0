// The playground's files over HTTP (the browser tests in tests/browser drive the page itself):
// served from the binary, cacheable, public even with auth on, and nothing else becomes public.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, E2E_DIR } from './lib/harness.mjs';
import { client, metricValue } from './lib/http.mjs';

function assertUnauthorized(res) {
  assert.equal(res.status, 401, res.text);
  assert.deepEqual(res.json, { detail: 'Not authenticated' });
}

const WEB = path.resolve(E2E_DIR, '../../web');
let srv;
let c;
before(async () => {
  srv = await startServer(['--auth-secret', 'Bearer web-1']);
  c = client(srv.url);
});
after(async () => { await srv?.stop(); });

test('/ is the page and every file of web/ is served byte for byte, without auth', async () => {
  const page = await c.get('/');
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.deepEqual(page.raw, fs.readFileSync(path.join(WEB, 'index.html')));
  assert.match(page.headers['content-security-policy'], /default-src 'self'/);
  assert.match(page.headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
  for (const name of fs.readdirSync(WEB)) {
    const res = await c.get(`/${name}`);
    assert.equal(res.status, 200, name);
    assert.deepEqual(res.raw, fs.readFileSync(path.join(WEB, name)), name);
    assert.ok(res.headers['content-type'].startsWith(types[path.extname(name)]), `${name}: ${res.headers['content-type']}`);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.match(res.headers.etag, /^"[0-9a-f]{20}"$/);
  }
});

test('a matching If-None-Match answers 304 with no body; a stale one gets the file', async () => {
  const first = await c.get('/app.js');
  const again = await c.get('/app.js', { headers: { 'If-None-Match': first.headers.etag } });
  assert.equal(again.status, 304);
  assert.equal(again.raw.length, 0);
  for (const list of [`"0000", ${first.headers.etag}`, `W/${first.headers.etag}`, '*']) {
    const r = await c.get('/app.js', { headers: { 'If-None-Match': list } });
    assert.equal(r.status, 304, list);
  }
  const stale = await c.get('/app.js', { headers: { 'If-None-Match': '"0000", W/"1111"' } });
  assert.equal(stale.status, 200);
  assert.deepEqual(stale.raw, first.raw);
});

test('only the playground is public: the API and unknown paths still need the secret', async () => {
  assertUnauthorized(await c.get('/v1/messages/async'));
  assertUnauthorized(await c.get('/metrics'));
  assertUnauthorized(await c.get('/nope.js'));
  assertUnauthorized(await c.get('/web/app.js'));
  assertUnauthorized(await c.get('/..%2Fsrc%2Fapp%2Fmain.cpp'));
  const authed = client(srv.url, { Authorization: 'Bearer web-1' });
  const missing = await authed.get('/nope.js');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { detail: 'Not Found' });
  const post = await authed.post('/', {});
  assert.equal(post.status, 404);
  // Counted under their own route.
  const m = await authed.metrics();
  assert.ok(metricValue(m, 'spool_requests_total', 'route="web",status="200"') >= 1);
});

test('under a path prefix the page redirects to its folder and serves from there', async () => {
  const s = await startServer(['--path-prefix', '/spool']);
  try {
    const pc = client(s.url);
    const bare = await pc.get('/spool');
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.location, '/spool/');
    const page = await pc.get('/spool/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>Spool playground<\/title>/);
    assert.equal((await pc.get('/spool/app.js')).status, 200);
    assert.equal((await pc.get('/')).status, 200);  // routes also answer without the prefix
  } finally {
    await s.stop();
  }
});

test('web_ui = false turns the playground off', async () => {
  const s = await startServer(['--web-ui', 'false']);
  try {
    const res = await client(s.url).get('/');
    assert.equal(res.status, 404);
    assert.deepEqual(res.json, { detail: 'Not Found' });
    assert.equal((await client(s.url).get('/app.js')).status, 404);
  } finally {
    await s.stop();
  }
});
