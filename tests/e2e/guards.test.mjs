// Requests a browser page on another site could make, and HTTP details a hostile client could
// use (§6, issue 12 point 8–9): Host and Origin with auth off, chunked trailers, 100-continue,
// ids that are not UTF-8, stream scoping with tenants.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, rawConnect, assertErrorBody, ASYNC } from './lib/http.mjs';

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '0', '--allowed-hosts', 'spool.internal,.corp.example']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

let seq = 0;
const newId = (p) => `${p}-${process.pid}-${++seq}`;

/** Sends `text` on a new connection and resolves with everything the server sent until it closed (or `untilMs`). */
function exchange(base, text, { untilMs = 3000, until } = {}) {
  return new Promise((resolve, reject) => {
    rawConnect(base).then((s) => {
      let got = '';
      const timer = setTimeout(() => { s.destroy(); resolve(got); }, untilMs);
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (until && until(got)) { clearTimeout(timer); s.destroy(); resolve(got); }
      });
      s.on('close', () => { clearTimeout(timer); resolve(got); });
      s.on('error', () => {});
      s.write(text);
    }, reject);
  });
}

test('auth off: a Host that is not ours is 403 (DNS rebinding); IPs, localhost, --host and allowed_hosts pass', async () => {
  const listHost = (host) => c.get(ASYNC, { headers: { Host: host } });
  for (const host of ['attacker.example', 'attacker.example:8080', 'localhost.attacker.example', 'corp.example.evil']) {
    const r = await listHost(host);
    assertErrorBody(assert, r, 403, 'permission_error');
    assert.match(r.json.error.message + r.json.detail, /allowed_hosts/);
  }
  for (const host of ['localhost', `localhost:${srv.port}`, `127.0.0.1:${srv.port}`, '[::1]:9', '10.1.2.3',
    'app.localhost', 'spool.internal', 'SPOOL.internal:80', 'a.corp.example', 'corp.example']) {
    assert.equal((await listHost(host)).status, 200, host);
  }
  // /health stays open to probes whatever they call the server
  assert.equal((await c.get('/health', { headers: { Host: 'attacker.example' } })).status, 200);
});

test('auth off: a cross-origin POST or DELETE is 403 and changes nothing; same-origin and GET pass', async () => {
  const id = newId('xo');
  const foreign = { Origin: 'http://attacker.example' };
  const refused = await c.start(chat('hi'), id, { headers: foreign });
  assertErrorBody(assert, refused, 403, 'permission_error');
  assert.equal((await c.status(id)).status, 404, 'nothing was started');
  const same = { Origin: `http://127.0.0.1:${srv.port}` };
  assert.equal((await c.start(chat('hi'), id, { headers: same })).status, 200);
  assertErrorBody(assert, await c.cancel(id, { headers: { Origin: 'null' } }), 403, 'permission_error');
  assertErrorBody(assert, await c.remove(id, { headers: foreign }), 403, 'permission_error');
  assert.equal((await c.status(id, { headers: foreign })).status, 200, 'GET is not a change (reading is the browser\'s CORS business)');
  assert.equal((await c.remove(id)).status, 200, 'a client that is not a browser sends no Origin');
});

test('auth on: Host and Origin are not checked (the secret is the proof)', async () => {
  const p = await startServer(['--auth-secret', 'Bearer s3']);
  try {
    const pc = client(p.url, { Authorization: 'Bearer s3' });
    assert.equal((await pc.get(ASYNC, { headers: { Host: 'api.example.com' } })).status, 200);
    assert.equal((await pc.start(chat('x'), undefined, { headers: { Origin: 'https://app.example.com' } })).status, 200);
  } finally {
    await p.stop();
  }
});

test('a chunked trailer is never taken as a header: Authorization in a trailer is 401', async () => {
  const p = await startServer(['--auth-secret', 'Bearer t1']);
  try {
    const body = JSON.stringify(chat('trailer'));
    const req = `POST ${ASYNC} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
      'Transfer-Encoding: chunked\r\nTrailer: Authorization\r\nConnection: close\r\n\r\n' +
      `${body.length.toString(16)}\r\n${body}\r\n0\r\nAuthorization: Bearer t1\r\n\r\n`;
    const got = await exchange(p.url, req);
    assert.match(got, /^HTTP\/1\.1 401 /, got.slice(0, 200));
    const same = req.replace('Connection: close', 'Authorization: Bearer t1\r\nConnection: close');
    assert.match(await exchange(p.url, same), /^HTTP\/1\.1 200 /, 'the same request with the header is accepted');
  } finally {
    await p.stop();
  }
});

test('Expect: 100-continue gets "100 Continue" before the body is sent; an oversized one gets 413 instead', async () => {
  const body = JSON.stringify(chat('continue'));
  const head = `POST ${ASYNC} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
  const s = await rawConnect(srv.url);
  let got = '';
  const interim = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 100 Continue within 2 s; got ${JSON.stringify(got)}`)), 2000);
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n\r\n')) { clearTimeout(timer); resolve(); }
    });
  });
  s.write(head);
  await interim;
  assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  const final = new Promise((resolve) => s.on('close', resolve));
  s.write(body);
  await final;
  assert.match(got, /HTTP\/1\.1 200 OK/);
  const big = await exchange(srv.url, `POST ${ASYNC} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${64 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`, { until: (t) => t.includes('}') });
  assert.match(big, /^HTTP\/1\.1 413 /, big.slice(0, 100));
  assert.doesNotMatch(big, /100 Continue/);
});

test('ids that are not UTF-8: a start is 400; a route answers 404 whose body is valid UTF-8 JSON', async () => {
  const r = await c.request('POST', `${ASYNC}?message_id=ab%FF%FE`, { json: chat('x') });
  assertErrorBody(assert, r, 400, 'invalid_request_error');
  assert.match(JSON.stringify(r.json), /UTF-8/);
  const s = await c.get(`${ASYNC}/ab%C3%28/status`);
  assert.equal(s.status, 404);
  assert.ok(new TextDecoder('utf-8', { fatal: true }).decode(s.raw), 'valid UTF-8');
  assert.match(s.json.detail, /^Stream with message_id ab\uFFFD\( not found$/);
  assert.equal((await c.start(chat('x'), 'ünïcødé-id')).status, 200, 'well-formed UTF-8 ids are fine');
});

test('with named tenants, stream scoping is on unless turned off', async () => {
  const scoped = await startServer(['--tenants', 'alice=Bearer a,bob=Bearer b']);
  const open = await startServer(['--tenants', 'alice=Bearer a,bob=Bearer b', '--stream-scoping', 'false']);
  try {
    for (const [p, visible] of [[scoped, false], [open, true]]) {
      const alice = client(p.url, { Authorization: 'Bearer a' });
      const bob = client(p.url, { Authorization: 'Bearer b' });
      const id = newId('scope');
      assert.equal((await alice.start(chat('mine'), id)).status, 200);
      assert.equal((await bob.status(id)).status, visible ? 200 : 404);
      assert.equal((await bob.get(ASYNC)).json.data.some((s) => s.message_id === id), visible);
    }
  } finally {
    await scoped.stop();
    await open.stop();
  }
});
