// The HTTP layer: keep-alive, request timeouts (slowloris), graceful shutdown, path prefix,
// operational routes, active-stream limit, slow observers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from './lib/harness.mjs';
import {
  client, chat, words, waitStatus, streamUrl, rawConnect, request, assertErrorBody, sleep, ASYNC,
} from './lib/http.mjs';
import { openSSE, readSSE, parseSSE, textOf } from './lib/sse.mjs';

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '20', '--request-timeout', '1']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

let seq = 0;
const newId = (p) => `${p}-${process.pid}-${++seq}`;

/** Resolves with the ms until the server closes `sock` (or rejects after limitMs). */
function closeTime(sock, t0, limitMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server kept the connection open for ${limitMs} ms`)), limitMs);
    sock.on('close', () => { clearTimeout(timer); resolve(performance.now() - t0); });
    sock.on('error', () => {});
  });
}

test('keep-alive: several requests on one socket', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const sockets = new Set();
    const id = newId('ka');
    const seqReqs = [
      ['GET', '/health', undefined],
      ['POST', `${ASYNC}?message_id=${id}`, chat('keep alive')],
      ['GET', `${ASYNC}/${id}/status`, undefined],
      ['POST', '/v1/messages/count_tokens', { messages: [{ role: 'user', content: 'a b' }] }],
      ['GET', `${ASYNC}/${newId('missing')}/status`, undefined],
      ['GET', '/metrics', undefined],
    ];
    const statuses = [];
    for (const [method, path, json] of seqReqs) {
      const r = await request(srv.url, method, path, { json, agent });
      statuses.push(r.status);
      sockets.add(r.socket);
      assert.notEqual(String(r.headers.connection).toLowerCase(), 'close', `${method} ${path} closed the connection`);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 404, 200]);
    assert.equal(sockets.size, 1, `requests used ${sockets.size} sockets`);
  } finally {
    agent.destroy();
  }
});

test('keep-alive: the non-streaming POST /v1/messages answer keeps the connection open too', async () => {
  // Its body has a Content-Length, so nothing requires closing the connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const sockets = new Set();
    for (const [method, path, json] of [
      ['POST', '/v1/messages', chat('sync on the same socket')],
      ['GET', '/health', undefined],
      ['POST', '/v1/messages', chat('and again')],
    ]) {
      const r = await request(srv.url, method, path, { json, agent });
      assert.equal(r.status, 200, r.text);
      sockets.add(r.socket);
    }
    assert.equal(sockets.size, 1, `3 requests used ${sockets.size} sockets (POST /v1/messages answered Connection: close)`);
  } finally {
    agent.destroy();
  }
});

test('keep-alive: two requests written back to back on a raw socket both get answers', async () => {
  const s = await rawConnect(srv.url);
  let buf = '';
  s.setEncoding('utf8');
  s.on('data', (d) => { buf += d; });
  const req = `GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n`;
  s.write(req + req);
  const deadline = Date.now() + 3000;
  while ((buf.match(/HTTP\/1\.1 200/g) ?? []).length < 2 && Date.now() < deadline) await sleep(10);
  s.destroy();
  assert.equal((buf.match(/HTTP\/1\.1 200/g) ?? []).length, 2, `got: ${buf}`);
});

test('slowloris: a client trickling headers is disconnected after --request-timeout', async () => {
  const s = await rawConnect(srv.url);
  const t0 = performance.now();
  const closed = closeTime(s, t0, 4000);
  s.write('GET /health HTTP/1.1\r\nHost: localhost\r\n');
  let n = 0;
  const trickle = setInterval(() => { if (!s.destroyed) s.write(`X-Slow-${n++}: a\r\n`); }, 150);
  // Meanwhile the server serves others normally.
  const h = await request(srv.url, 'GET', '/health');
  assert.equal(h.status, 200);
  try {
    const dt = await closed;
    assert.ok(dt >= 800, `closed too early (${dt.toFixed(0)} ms)`);
    assert.ok(dt < 2500, `closed after ${dt.toFixed(0)} ms with --request-timeout 1`);
  } finally {
    clearInterval(trickle);
    s.destroy();
  }
});

test('slow body: a request whose body never completes is disconnected after --request-timeout', async () => {
  const s = await rawConnect(srv.url);
  const t0 = performance.now();
  const closed = closeTime(s, t0, 4000);
  s.write(`POST ${ASYNC} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"messages":`);
  const trickle = setInterval(() => { if (!s.destroyed) s.write(' '); }, 150);
  try {
    const dt = await closed;
    assert.ok(dt >= 800 && dt < 2500, `closed after ${dt.toFixed(0)} ms`);
  } finally {
    clearInterval(trickle);
    s.destroy();
  }
});

test('an idle keep-alive connection is closed after --request-timeout', async () => {
  const s = await rawConnect(srv.url);
  let buf = '';
  s.on('data', (d) => { buf += d; });
  s.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const deadline = Date.now() + 2000;
  while (!buf.includes('\r\n\r\n') && Date.now() < deadline) await sleep(5);
  assert.match(buf, /^HTTP\/1\.1 200/);
  const t0 = performance.now();
  const dt = await closeTime(s, t0, 4000);
  assert.ok(dt < 2500, `idle connection kept ${dt.toFixed(0)} ms`);
});

test('the request timeout does not cut a long SSE observer', async () => {
  const id = newId('long');
  const prompt = words(100); // ~2 s, longer than the 1 s request timeout
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  const r = await readSSE(streamUrl(srv.url, id), { timeoutMs: 8000 });
  assert.equal(r.stored.at(-1).event, 'message_stop');
  assert.equal(textOf(r.events), prompt);
});

test('GET /health is 200 JSON; GET /metrics is Prometheus text', async () => {
  const h = await c.get('/health');
  assert.equal(h.status, 200);
  assert.match(String(h.headers['content-type']), /^application\/json/);
  assert.equal(typeof h.json, 'object');
  const m = await c.get('/metrics');
  assert.equal(m.status, 200);
  assert.match(String(m.headers['content-type']), /^text\/plain/);
  assert.match(m.text, /^# TYPE spool_requests_total counter$/m);
  assert.match(m.text, /^spool_active_jobs \d+$/m);
  assert.match(m.text, /^spool_observers \d+$/m);
});

test('--path-prefix: routes answer under the prefix (and without it)', async () => {
  const p = await startServer(['--mock-token-delay-ms', '1', '--path-prefix', '/api/spool']);
  try {
    const pc = client(p.url);
    const id = newId('prefix');
    const r = await pc.request('POST', `/api/spool${ASYNC}?message_id=${id}`, { json: chat('prefixed route') });
    assert.equal(r.status, 200, r.text);
    const s = await pc.get(`/api/spool${ASYNC}/${id}/status`);
    assert.equal(s.status, 200);
    const log = await readSSE(`${p.url}/api/spool${ASYNC}/${id}/stream`);
    assert.equal(textOf(log.events), 'prefixed route');
    const sync = await pc.request('POST', '/api/spool/v1/messages', { json: chat('sync prefixed') });
    assert.equal(sync.status, 200);
    assert.equal(sync.json.content[0].text, 'sync prefixed');
    const ct = await pc.request('POST', '/api/spool/v1/messages/count_tokens', { json: chat('a b c') });
    assert.deepEqual(ct.json, { input_tokens: 3 });
    assert.equal((await pc.get(`${ASYNC}/${id}/status`)).status, 200, 'unprefixed routes still answer');
    const nf = await pc.get(`/api/spool${ASYNC}/${newId('x')}/status`);
    assert.equal(nf.status, 404);
    assert.equal((await pc.request('DELETE', `/api/spool${ASYNC}/${id}/delete`)).status, 200);
    assert.equal((await pc.get(`/api/spool${ASYNC}/${id}/status`)).status, 404);
    assert.deepEqual((await pc.get('/api/other/v1/messages')).json, { detail: 'Not Found' });
  } finally {
    await p.stop();
  }
});

test('--max-active-streams: one more is 529 overloaded_error; room again after a cancel', async () => {
  const p = await startServer(['--mock-token-delay-ms', '60000', '--max-active-streams', '2']);
  try {
    const pc = client(p.url);
    const a = newId('lim');
    const b = newId('lim');
    assert.equal((await pc.start(chat('one two'), a)).status, 200);
    assert.equal((await pc.start(chat('one two'), b)).status, 200);
    const over = newId('lim');
    const r = await pc.start(chat('one two'), over);
    assertErrorBody(assert, r, 529, 'overloaded_error');
    assert.equal((await pc.status(over)).status, 404, 'a rejected start creates nothing');
    assert.equal((await pc.cancel(a)).status, 200);
    const again = await pc.start(chat('one two'), newId('lim'));
    assert.equal(again.status, 200, again.text);
  } finally {
    await p.stop();
  }
});

test('a stalled observer is dropped after --observer-write-timeout without slowing the producer; it can resume', async () => {
  const p = await startServer(['--mock-token-delay-ms', '0', '--observer-write-timeout', '1']);
  try {
    const pc = client(p.url);
    const id = newId('stall');
    const prompt = words(80000, 'tok'); // a log of ~14 MB: more than the socket buffers hold
    assert.equal((await pc.start(chat(prompt, { max_tokens: 0 }), id)).status, 200);
    const s = await rawConnect(p.url);
    s.write(`GET ${ASYNC}/${id}/stream HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    s.pause(); // read nothing
    // A normal observer alongside is not slowed by the stalled one.
    const fast = openSSE(streamUrl(p.url, id), { timeoutMs: 20_000 });
    // The producer is not slowed by the stalled reader.
    const st = await waitStatus(pc, id, 'completed', 15_000);
    assert.equal(st.metadata.events, 80000 + 5);
    const fr = await fast.done;
    assert.equal(fr.stored.length, 80000 + 5, 'the fast observer got the whole log');
    assert.equal(fr.stored.at(-1).event, 'message_stop');
    await sleep(3000); // well past the 1 s write timeout
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    const t0 = performance.now();
    const closed = closeTime(s, t0, 10_000);
    s.resume();
    await closed;
    const raw = Buffer.concat(chunks).toString('utf8');
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    const frames = parseSSE(body.slice(0, body.lastIndexOf('\n\n') + 2));
    assert.ok(frames.length > 0, 'the observer got some frames before it stalled');
    assert.notEqual(frames.at(-1).event, 'message_stop', 'a stalled observer must be dropped, not served to the end');
    // It reconnects and resumes without gaps.
    const lastId = Number(frames.at(-1).id);
    const rest = await readSSE(streamUrl(p.url, id), { headers: { 'Last-Event-ID': String(lastId) }, timeoutMs: 20_000 });
    assert.equal(Number(rest.stored[0].id), lastId + 1);
    assert.equal(rest.stored.at(-1).event, 'message_stop');
    assert.equal(lastId + rest.stored.length, 80000 + 5);
  } finally {
    await p.stop();
  }
});

test('SIGTERM: graceful shutdown closes open observers and exits 0', async () => {
  const p = await startServer(['--mock-token-delay-ms', '50']);
  const pc = client(p.url);
  const id = newId('term');
  assert.equal((await pc.start(chat(words(200)), id)).status, 200);
  const o1 = openSSE(streamUrl(p.url, id));
  const o2 = openSSE(streamUrl(p.url, id));
  const sync = openSSE(`${p.url}/v1/messages`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(chat(words(200), { stream: true })),
  });
  await Promise.all([o1.waitForCount(2, 5000, 'content_block_delta'), o2.waitForCount(2, 5000, 'content_block_delta'),
    sync.waitForCount(2, 5000, 'content_block_delta')]);
  const t0 = performance.now();
  const stopped = p.stop(5000); // asserts exit code 0
  const results = await Promise.all([o1.done, o2.done, sync.done]);
  for (const r of results) {
    assert.ok(r.closeAt - t0 < 5000, 'observer closed on shutdown');
    assert.ok(r.stored.length >= 3);
  }
  const ex = await stopped;
  assert.equal(ex.code, 0);
  assert.ok(performance.now() - t0 < 5000);
});
