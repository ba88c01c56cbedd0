// §4.2 retention: stream_expiration and maximum_stream_length.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitStatus, streamUrl, sleep, ASYNC } from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';

let exp;  // --stream-expiration 1
let ec;
let cap;  // --maximum-stream-length 10
let cc;
before(async () => {
  [exp, cap] = await Promise.all([
    startServer(['--mock-token-delay-ms', '20', '--stream-expiration', '1']),
    startServer(['--mock-token-delay-ms', '5', '--maximum-stream-length', '10']),
  ]);
  ec = client(exp.url);
  cc = client(cap.url);
});
after(async () => { await Promise.all([exp.stop(), cap.stop()]); });

let seq = 0;
const newId = (p) => `${p}-${process.pid}-${++seq}`;

/** Polls until the id is 404; returns ms since `since`. */
async function goneAfter(c, id, since, limitMs) {
  for (;;) {
    const r = await c.status(id);
    if (r.status === 404) return Date.now() - since;
    assert.equal(r.status, 200);
    if (Date.now() - since > limitMs) assert.fail(`stream ${id} still there ${Date.now() - since} ms after it ended`);
    await sleep(50);
  }
}

test('a completed stream is kept ~1 s, then behaves as deleted (404 everywhere, id reusable)', async () => {
  const id = newId('exp');
  assert.equal((await ec.start(chat('short lived'), id)).status, 200);
  await waitStatus(ec, id, 'completed');
  const ended = Date.now();
  await sleep(400);
  const kept = await ec.status(id);
  assert.equal(kept.status, 200, 'a terminal stream is kept for stream_expiration seconds');
  const log = await readSSE(streamUrl(exp.url, id));
  assert.equal(textOf(log.events), 'short lived');
  const dt = await goneAfter(ec, id, ended, 2600);
  assert.ok(dt >= 900, `expired after only ${dt} ms`);
  for (const r of [await ec.get(`${ASYNC}/${id}/stream`), await ec.cancel(id), await ec.remove(id)]) {
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { detail: `Stream with message_id ${id} not found` });
  }
  assert.equal((await ec.start(chat('reborn'), id)).status, 200, 'an expired id may be used again');
});

test('a cancelled stream expires too', async () => {
  const id = newId('expc');
  assert.equal((await ec.start(chat(words(100)), id)).status, 200);
  assert.equal((await ec.cancel(id)).status, 200);
  const ended = Date.now();
  await goneAfter(ec, id, ended, 2600);
});

test('a running stream does not expire', async () => {
  const id = newId('run');
  const prompt = words(150); // ~3 s at 20 ms per token
  assert.equal((await ec.start(chat(prompt), id)).status, 200);
  const o = openSSE(streamUrl(exp.url, id), { timeoutMs: 10_000 });
  await waitStatus(ec, id, 'processing', 2000);
  const t0 = Date.now();
  while (Date.now() - t0 < 2500) {
    const s = await ec.status(id);
    assert.equal(s.status, 200, `running stream vanished after ${Date.now() - t0} ms`);
    assert.equal(s.json.status, 'processing');
    await sleep(100);
  }
  const r = await o.done;
  assert.equal(textOf(r.events), prompt, 'the observer saw the whole message');
  assert.equal(r.stored.at(-1).event, 'message_stop');
  assert.equal((await ec.status(id)).json.status, 'completed');
});

test('--maximum-stream-length: a long reply ends with an error event and status error', async () => {
  const id = newId('cap');
  assert.equal((await cc.start(chat(words(20)), id)).status, 200);
  const o = openSSE(streamUrl(cap.url, id));
  const r = await o.done;
  const s = await waitStatus(cc, id, 'error');
  assert.equal(s.status, 'error');
  assert.equal(typeof s.error_message, 'string');
  assert.ok(s.error_message.length > 0);
  assert.ok(s.completed_at);
  const ev = r.stored;
  assert.ok(ev.length <= 10, `log holds ${ev.length} events, cap is 10`);
  assert.equal(s.metadata.events, ev.length);
  assert.equal(ev.at(-1).event, 'error', 'the log ends with an error event');
  assert.ok(!ev.some((e) => e.event === 'message_stop'), 'no message_stop after an error');
  assert.equal(ev.filter((e) => e.event === 'error').length, 1);
  const err = ev.at(-1).json;
  assert.equal(err.type, 'error');
  assert.equal(err.request_id, id, 'error event request_id is the stream id');
  assert.equal(typeof err.error?.type, 'string');
  assert.ok(err.error.detail && typeof err.error.detail.code === 'string');
  assert.ok(err.exception && typeof err.exception.type === 'string');
  assert.deepEqual(err.detail, err.error.detail.explanation);
  assert.ok(r.closeAt - ev.at(-1).t < 100, 'observer closed promptly after the error event');
  const late = await readSSE(streamUrl(cap.url, id));
  assert.ok(late.body.equals(r.body));
});

test('--maximum-stream-length: a reply that fits (exactly 10 events) completes', async () => {
  for (const n of [3, 5]) {
    const id = newId('fits');
    const prompt = words(n);
    assert.equal((await cc.start(chat(prompt), id)).status, 200);
    const s = await waitStatus(cc, id);
    assert.equal(s.status, 'completed', `${n} words → ${n + 5} events`);
    assert.equal(s.metadata.events, n + 5);
    const log = await readSSE(streamUrl(cap.url, id));
    assert.equal(textOf(log.events), prompt);
  }
  const id = newId('over-by-one');
  assert.equal((await cc.start(chat(words(6)), id)).status, 200);
  assert.equal((await waitStatus(cc, id)).status, 'error', '6 words → 11 events > 10');
});

test('--maximum-stream-length on the synchronous route: the §5 error body with an error status', async () => {
  const r = await cc.post('/v1/messages', chat(words(20)));
  assert.ok(r.status >= 400, `expected an error status, got ${r.status}: ${r.text}`);
  assert.equal(r.json?.type, 'error', r.text);
  assert.equal(typeof r.json.error?.type, 'string');
});

test('PGPT_ASYNC_* environment names are honoured', async () => {
  const p = await startServer(['--mock-token-delay-ms', '2'], {
    env: { PGPT_ASYNC_MAXIMUM_STREAM_LENGTH: '10', PGPT_ASYNC_STREAM_EXPIRATION: '1' },
  });
  try {
    const pc = client(p.url);
    const id = newId('pgpt');
    assert.equal((await pc.start(chat(words(20)), id)).status, 200);
    assert.equal((await waitStatus(pc, id)).status, 'error');
    await goneAfter(pc, id, Date.now(), 2600);
  } finally {
    await p.stop();
  }
});
