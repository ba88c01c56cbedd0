// Incarnations (SPEC §1.2, §1.5): an id deleted (or expired) and started again is a new
// incarnation; its SSE ids carry it ("N.I"; the first keeps plain "N"), and a cursor of another
// incarnation is refused with 409 (§5 body) before any SSE byte, instead of resuming into a
// different job. With the memory broker, the durable single node across graceful and SIGKILL
// restarts, and the Redis broker across two instances.
import { test, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { serversPerTest, freshDataDir } from './lib/harness.mjs';
import { client, chat, words, waitStatus, waitUntil, streamUrl, ASYNC } from './lib/http.mjs';
import { readSSE } from './lib/sse.mjs';
import { startRedis, redisMissing } from './lib/redis.mjs';

const startServer = serversPerTest(afterEach);

let seq = 0;
const nextId = (tag) => `inc-${tag}-${process.pid}-${++seq}`;
const WORDS = 6;
const EVENTS = WORDS + 5;  // message_start, block start, a delta per word, block stop, message_delta, message_stop

/** Starts job `id` on `c` and waits (10 s at most) until it is over. */
async function run(c, id) {
  const r = await c.start(chat(words(WORDS)), id);
  assert.equal(r.status, 200, r.text);
  await waitStatus(c, id);
}

/** The SSE ids of `id`'s stored events, read on `base` from the start. */
async function idsOf(base, id) {
  const r = await readSSE(streamUrl(base, id));
  assert.equal(r.status, 200);
  return r.stored.map((e) => e.id);
}

/** The ids an incarnation's log of EVENTS events carries. */
const expectedIds = (incarnation) =>
  Array.from({ length: EVENTS }, (_, i) => (incarnation === 1 ? `${i + 1}` : `${i + 1}.${incarnation}`));

/** Asserts `res` is the 409 (§5 body) refusing a cursor of incarnation `old` while the id is at `now`. */
function assertRefused(res, id, old, now) {
  assert.equal(res.status, 409, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/, 'decided before any SSE byte');
  const b = res.json;
  assert.equal(b.type, 'error');
  assert.equal(b.error.type, 'invalid_request_error');
  assert.equal(b.error.detail.code, 'CONFLICT');
  assert.equal(b.detail, b.error.detail.explanation);
  assert.match(b.detail, new RegExp(`incarnation ${old} of stream ${id}\\b`), b.detail);
  assert.match(b.detail, new RegExp(`now names incarnation ${now} \\(resume it from the start`), b.detail);
  assert.match(b.error.message, /^Conflict: Last-Event-ID /, b.error.message);
}

/** GET the stream of `id` on `c` resuming from `cursor`, by header or (query) by ?last_event_id=. */
function resume(c, id, cursor, { query = false } = {}) {
  return query ? c.get(`${ASYNC}/${encodeURIComponent(id)}/stream?last_event_id=${encodeURIComponent(cursor)}`)
    : c.get(`${ASYNC}/${encodeURIComponent(id)}/stream`, { headers: { 'Last-Event-ID': cursor } });
}

/** The events read after `cursor` (by header), as ids. */
async function idsAfter(base, id, cursor) {
  const r = await readSSE(streamUrl(base, id), { headers: { 'Last-Event-ID': cursor } });
  assert.equal(r.status, 200, `resume from ${cursor}`);
  return r.stored.map((e) => e.id);
}

test('memory broker: a reused id is its next incarnation, and an old cursor is a 409', async () => {
  const srv = await startServer(['--durable', 'false', '--mock-token-delay-ms', '2']);
  const c = client(srv.url);
  const id = nextId('mem');
  await run(c, id);
  assert.deepEqual(await idsOf(srv.url, id), expectedIds(1), 'the first incarnation keeps plain positions');
  assert.equal((await c.status(id)).json.metadata.incarnation, 1);
  assert.equal((await c.remove(id)).status, 200);

  await run(c, id);
  assert.deepEqual(await idsOf(srv.url, id), expectedIds(2));
  assert.equal((await c.status(id)).json.metadata.incarnation, 2);
  for (const query of [false, true]) {
    assertRefused(await resume(c, id, '3', { query }), id, 1, 2);
    assertRefused(await resume(c, id, '3.1', { query }), id, 1, 2);
  }
  assert.deepEqual(await idsAfter(srv.url, id, '3.2'), expectedIds(2).slice(3));
  const byQuery = await readSSE(streamUrl(srv.url, id, '?last_event_id=3.2'));
  assert.deepEqual(byQuery.stored.map((e) => e.id), expectedIds(2).slice(3));
  assert.equal((await resume(c, id, `${EVENTS}.2`)).status, 204, 'a terminal stream with nothing after: 204');
  assert.equal((await resume(c, id, '3.0')).status, 400);
  assert.equal((await resume(c, id, '3.x')).status, 400);
  assert.deepEqual(await idsAfter(srv.url, id, '0'), expectedIds(2), 'position 0 names no event: from the start');

  assert.equal((await c.remove(id)).status, 200);
  await run(c, id);
  assert.deepEqual(await idsOf(srv.url, id), expectedIds(3));
  assertRefused(await resume(c, id, '3.2'), id, 2, 3);
  assertRefused(await resume(c, id, '3.7'), id, 7, 3);
  assert.deepEqual(await idsAfter(srv.url, id, '10.3'), expectedIds(3).slice(10));
  await srv.stop();
});

test('memory broker: an expired stream leaves its tombstone too', async () => {
  const srv = await startServer(['--durable', 'false', '--stream-expiration', '1', '--mock-token-delay-ms', '1']);
  const c = client(srv.url);
  const id = nextId('exp');
  await run(c, id);
  await waitUntil(async () => (await c.status(id)).status === 404, { timeoutMs: 5000, what: 'the stream to expire' });
  await run(c, id);
  assert.equal((await c.status(id)).json.metadata.incarnation, 2);
  assertRefused(await resume(c, id, '2'), id, 1, 2);
  await srv.stop();
});

test('durable: incarnations and tombstones survive a graceful restart and a SIGKILL', async () => {
  const dataDir = freshDataDir();
  const args = ['--mock-token-delay-ms', '2'];
  let srv = await startServer(args, { dataDir });
  let c = client(srv.url);
  const id = nextId('dur');
  await run(c, id);
  assert.equal((await c.remove(id)).status, 200);
  await run(c, id);
  const before = await readSSE(streamUrl(srv.url, id));
  await srv.stop();

  srv = await startServer(args, { dataDir });
  c = client(srv.url);
  const afterRestart = await readSSE(streamUrl(srv.url, id));
  assert.equal(afterRestart.text, before.text, 'the same bytes, ids with their incarnation');
  assert.deepEqual(afterRestart.stored.map((e) => e.id), expectedIds(2));
  assert.equal((await c.status(id)).json.metadata.incarnation, 2);
  assertRefused(await resume(c, id, '3'), id, 1, 2);
  assert.deepEqual(await idsAfter(srv.url, id, '3.2'), expectedIds(2).slice(3));
  // a tombstone left before a graceful restart is remembered after it
  assert.equal((await c.remove(id)).status, 200);
  await srv.stop();
  srv = await startServer(args, { dataDir });
  c = client(srv.url);
  assert.equal((await c.status(id)).status, 404);
  await run(c, id);
  assert.deepEqual(await idsOf(srv.url, id), expectedIds(3));

  // and one left just before a SIGKILL (in the log after the last checkpoint)
  assert.equal((await c.remove(id)).status, 200);
  srv.proc.kill('SIGKILL');
  await waitUntil(() => srv.exited(), { timeoutMs: 5000, what: 'the killed server to exit' });
  srv = await startServer(args, { dataDir });
  c = client(srv.url);
  await run(c, id);
  assert.deepEqual(await idsOf(srv.url, id), expectedIds(4));
  srv.proc.kill('SIGKILL');
  await waitUntil(() => srv.exited(), { timeoutMs: 5000, what: 'the killed server to exit' });
  srv = await startServer(args, { dataDir });
  c = client(srv.url);
  assert.deepEqual(await idsOf(srv.url, id), expectedIds(4), 'a killed incarnation reads back as itself');
  assertRefused(await resume(c, id, '3.3'), id, 3, 4);
  assert.deepEqual(await idsAfter(srv.url, id, '3.4'), expectedIds(4).slice(3));
  await srv.stop();
});

let redis = null;
after(async () => {
  if (redis) await redis.stop();
});

test('redis broker: deleted on A, started again on B, an old cursor is a 409 on both', { skip: redisMissing },
  async () => {
    redis = await startRedis();
    const args = ['--broker', 'redis', '--redis-url', redis.url, '--mock-token-delay-ms', '2'];
    const [a, b] = await Promise.all([startServer(args), startServer(args)]);
    const [ca, cb] = [client(a.url), client(b.url)];
    const id = nextId('redis');
    await run(ca, id);
    assert.deepEqual(await idsOf(b.url, id), expectedIds(1));
    assert.deepEqual(await idsOf(a.url, id), expectedIds(1));
    assert.equal((await ca.remove(id)).status, 200);
    await run(cb, id);
    for (const [srv, c] of [[a, ca], [b, cb]]) {
      assert.deepEqual(await idsOf(srv.url, id), expectedIds(2), srv.url);
      assert.equal((await c.status(id)).json.metadata.incarnation, 2);
      assertRefused(await resume(c, id, '3'), id, 1, 2);
      assertRefused(await resume(c, id, '3', { query: true }), id, 1, 2);
      assert.deepEqual(await idsAfter(srv.url, id, '3.2'), expectedIds(2).slice(3));
    }
    // again, the other way round
    assert.equal((await cb.remove(id)).status, 200);
    await run(ca, id);
    assert.deepEqual(await idsOf(b.url, id), expectedIds(3));
    assertRefused(await resume(cb, id, '3.2'), id, 2, 3);
    assertRefused(await resume(ca, id, '3.2'), id, 2, 3);
    await Promise.all([a.stop(), b.stop()]);
  });
