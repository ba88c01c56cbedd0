// Several instances on one real Redis (§4.5): three Spool processes with --broker redis, each
// able to serve every route for every stream; an instance killed with SIGKILL mid-stream; Redis
// itself killed and restarted mid-stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitStatus, waitUntil, streamUrl, sleep } from './lib/http.mjs';
import { openSSE, readSSE } from './lib/sse.mjs';
import { startRedis, redisMissing } from './lib/redis.mjs';

const LEASE_S = 1;
let redis;
let nodes = [];  // three instances
let clients = [];

const redisArgs = (url) => ['--broker', 'redis', '--redis-url', url, '--redis-lease', String(LEASE_S),
  '--mock-token-delay-ms', '20'];

before(async () => {
  if (redisMissing) return;
  redis = await startRedis({ persist: true });
  nodes = await Promise.all([0, 1, 2].map(() => startServer(redisArgs(redis.url))));
  clients = nodes.map((n) => client(n.url));
});
after(async () => {
  for (const n of nodes) if (!n.exited()) await n.stop();
  if (redis) await redis.stop();
});

const opts = { skip: redisMissing };
let seq = 0;
const nextId = (tag) => `cl-${tag}-${process.pid}-${++seq}`;
/** The SSE body without ping frames (pings are per connection, never stored). */
const framesOf = (text) => text.split('\n\n').filter((f) => f && !f.startsWith('event: ping')).join('\n\n');

test('start on A; live observers on B and C and a late one on C get A\'s exact bytes', opts, async () => {
  const [a, b, c] = clients;
  const id = nextId('fan');
  assert.equal((await a.start(chat(words(30)), id)).status, 200);
  const live = [openSSE(streamUrl(nodes[1].url, id)), openSSE(streamUrl(nodes[2].url, id)),
    openSSE(streamUrl(nodes[0].url, id))];
  const results = await Promise.all(live.map((s) => s.done));
  const late = await readSSE(streamUrl(nodes[2].url, id));
  const reference = framesOf(results[2].text);
  assert.ok(reference.includes('event: message_stop'), reference.slice(-200));
  assert.equal(results[0].stored.length, 30 + 5);
  for (const r of [results[0], results[1], late]) assert.equal(framesOf(r.text), reference);
  // resume on B from an id: the rest, as A stored it
  const tail = await readSSE(streamUrl(nodes[1].url, id, '?last_event_id=20'));
  assert.equal(tail.stored[0].id, '21');
  assert.equal(tail.stored.length, 35 - 20);
  // the same record everywhere
  const statuses = await Promise.all([a, b, c].map((x) => x.status(id)));
  for (const s of statuses) {
    assert.equal(s.status, 200);
    assert.equal(s.json.status, 'completed');
    assert.equal(s.json.metadata.events, 35);
    assert.deepEqual(s.json.metadata.usage, statuses[0].json.metadata.usage);
    assert.equal(s.json.completed_at, statuses[0].json.completed_at);
  }
});

test('an id taken on one instance is taken on every instance', opts, async () => {
  const id = nextId('dup');
  assert.equal((await clients[0].start(chat('one'), id)).status, 200);
  const again = await clients[1].start(chat('one'), id);
  assert.equal(again.status, 400);
  assert.match(again.text, /already exists/);
});

test('/status counts the observers on every instance, and forgets those that leave', opts, async () => {
  const [a, b, c] = clients;
  const id = nextId('observers');
  assert.equal((await a.start(chat(words(2000)), id)).status, 200);
  const watchers = [openSSE(streamUrl(nodes[1].url, id)), openSSE(streamUrl(nodes[1].url, id)),
    openSSE(streamUrl(nodes[2].url, id))];
  await Promise.all(watchers.map((w) => w.waitFor((e) => e.event === 'content_block_delta', 5000)));
  const observersOn = async (x) => (await x.status(id)).json.metadata.observers;
  for (const x of [a, b, c]) await waitUntil(async () => (await observersOn(x)) === 3, { what: 'three observers' });
  watchers[0].abort();
  for (const x of [a, b, c]) await waitUntil(async () => (await observersOn(x)) === 2, { what: 'two observers' });
  watchers[1].abort();
  watchers[2].abort();
  await waitUntil(async () => (await observersOn(a)) === 0, { what: 'no observers' });
  assert.equal((await a.cancel(id)).status, 200);
});

test('an Idempotency-Key binds one job across instances', opts, async () => {
  const key = `cluster-key-${process.pid}-${++seq}`;
  const body = chat(words(5));
  const headers = { 'Idempotency-Key': key };
  // the same request sent to every instance at once starts one job
  const replies = await Promise.all(clients.map((x) => x.start(body, undefined, { headers })));
  for (const r of replies) assert.equal(r.status, 200, r.text);
  const ids = new Set(replies.map((r) => r.json.message_id));
  assert.equal(ids.size, 1, `one job, not ${[...ids].join(', ')}`);
  const [id] = ids;
  await waitStatus(clients[2], id);
  const log = await readSSE(streamUrl(nodes[1].url, id));
  assert.equal(log.events.filter((e) => e.event === 'message_start').length, 1);
  // a different body under that key is refused on any instance
  const other = await clients[1].start(chat('different'), undefined, { headers });
  assert.equal(other.status, 409, other.text);
  // once the job is deleted (on another instance), the key starts a new one
  assert.equal((await clients[2].remove(id)).status, 200);
  const fresh = await clients[1].start(body, undefined, { headers });
  assert.equal(fresh.status, 200, fresh.text);
  assert.notEqual(fresh.json.message_id, id);
});

test('every instance lists the streams started on any instance, newest first, page by page', opts, async () => {
  const ids = [];
  for (const x of clients) {
    const id = nextId('list');
    assert.equal((await x.start(chat('listed'), id)).status, 200);
    ids.push(id);
    await sleep(5);  // distinct creation times (the index orders by the millisecond)
  }
  for (const x of clients) {
    const all = (await x.get('/v1/messages/async?limit=1000')).json.data.map((s) => s.message_id);
    assert.deepEqual(all.filter((id) => ids.includes(id)), [...ids].reverse());
  }
  const seen = [];
  let cursor = null;
  for (let i = 0; i < 200; i += 1) {
    const page = await clients[i % 3].get(`/v1/messages/async?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200, page.text);
    seen.push(...page.json.data.map((s) => s.message_id));
    if (!page.json.has_more) break;
    cursor = page.json.next_cursor;
  }
  assert.equal(new Set(seen).size, seen.length);
  for (const id of ids) assert.ok(seen.includes(id));
  // a deleted stream leaves every instance's list
  assert.equal((await clients[0].remove(ids[2])).status, 200);
  const after = (await clients[1].get('/v1/messages/async?limit=1000')).json.data.map((s) => s.message_id);
  assert.ok(!after.includes(ids[2]));
});

test('cancel on C stops the job running on A; the terminal events reach B before C answers', opts, async () => {
  const [a, , c] = clients;
  const id = nextId('cancel');
  assert.equal((await a.start(chat(words(400)), id)).status, 200);
  const onB = openSSE(streamUrl(nodes[1].url, id));
  await onB.waitFor((e) => e.event === 'content_block_delta', 5000);
  const res = await c.cancel(id);
  assert.equal(res.status, 200, res.text);
  // when C answers, the log (in Redis) already ends
  const s = await c.status(id);
  assert.equal(s.json.status, 'cancelled');
  const r = await onB.done;
  const ev = r.stored.map((e) => e.json);
  assert.equal(ev.at(-1).type, 'message_stop');
  assert.equal(ev.at(-2).delta.stop_reason, 'cancelled');
  assert.ok(ev.length < 400, 'the job stopped early');
  // A's engine stopped: the log does not grow any more
  const n = s.json.metadata.events;
  await sleep(200);
  assert.equal((await a.status(id)).json.metadata.events, n);
  assert.equal(r.stored.length, n);
});

test('delete on B removes a job running on A everywhere and releases observers on C', opts, async () => {
  const [a, b, c] = clients;
  const id = nextId('delete');
  assert.equal((await a.start(chat(words(400)), id)).status, 200);
  const onC = openSSE(streamUrl(nodes[2].url, id));
  await onC.waitFor((e) => e.event === 'content_block_delta', 5000);
  assert.equal((await b.remove(id)).status, 200);
  await onC.done;
  for (const x of [a, b, c]) assert.equal((await x.status(id)).status, 404);
  await sleep(200);  // A must not write the stream back
  for (const x of [a, b, c]) assert.equal((await x.status(id)).status, 404);
  assert.equal((await c.remove(id)).status, 404);
});

test('an instance killed mid-stream: its job ends with error "instance lost" for observers elsewhere', opts, async () => {
  const victim = await startServer(redisArgs(redis.url));
  const id = nextId('lost');
  assert.equal((await client(victim.url).start(chat(words(2000)), id)).status, 200);
  const onB = openSSE(streamUrl(nodes[1].url, id), { timeoutMs: 20_000 });
  await onB.waitFor((e) => e.event === 'content_block_delta', 5000);
  victim.proc.kill('SIGKILL');
  const t0 = Date.now();
  const r = await onB.done;
  const last = r.stored.at(-1).json;
  assert.equal(last.type, 'error');
  assert.match(last.detail, /instance lost/);
  assert.ok(Date.now() - t0 < 10_000, 'within a bounded time');
  const s = (await clients[2].status(id)).json;
  assert.equal(s.status, 'error');
  assert.match(s.error_message, /instance lost/);
  await victim.exitPromise;
});

test('a cancel that arrives while the running instance dies answers 409 with the final status; once over, 200', opts, async () => {
  const victim = await startServer(redisArgs(redis.url));
  const id = nextId('cancel-lost');
  assert.equal((await client(victim.url).start(chat(words(2000)), id)).status, 200);
  const onB = openSSE(streamUrl(nodes[1].url, id), { timeoutMs: 20_000 });
  await onB.waitFor((e) => e.event === 'content_block_delta', 5000);
  victim.proc.kill('SIGKILL');
  await victim.exitPromise;
  // The cancel reaches C before the lease runs out: the job then ends "instance lost", not cancelled.
  const answer = await clients[2].cancel(id, { timeoutMs: 20_000 });
  assert.equal(answer.status, 409, answer.text);
  assert.match(answer.json.detail, /ended as error \(instance lost.*\) before the cancel took effect/);
  assert.equal((await onB.done).stored.at(-1).json.type, 'error');
  // Over before the cancel arrived: 200 and nothing changes (§1.4).
  const late = await clients[0].cancel(id);
  assert.equal(late.status, 200, late.text);
  assert.equal(late.json.message, 'Stream cancelled successfully');
  const s = (await clients[1].status(id)).json;
  assert.equal(s.status, 'error');
  assert.match(s.error_message, /instance lost/);
});

test('a cancel sent to another instance while the job runs answers 200 only once the status is cancelled', opts, async () => {
  const [a, , c] = clients;
  const id = nextId('cancel-remote');
  assert.equal((await a.start(chat(words(2000)), id)).status, 200);
  await waitUntil(async () => (await c.status(id)).json?.status === 'processing', { what: 'processing' });
  const answer = await c.cancel(id);
  assert.equal(answer.status, 200, answer.text);
  for (const x of clients) assert.equal((await x.status(id)).json.status, 'cancelled');
});

test('Redis killed mid-stream: 503 while it is down, then the job finishes with nothing lost', opts, async () => {
  const [a, b] = clients;
  const id = nextId('redis');
  const other = nextId('redis-cancel');
  assert.equal((await a.start(chat(words(150)), id)).status, 200);  // 3 s of tokens
  assert.equal((await a.start(chat(words(500)), other)).status, 200);
  const onB = openSSE(streamUrl(nodes[1].url, id), { timeoutMs: 30_000 });
  await onB.waitFor((e) => e.event === 'content_block_delta', 5000);
  await redis.kill();
  const down = await b.status(id);
  assert.equal(down.status, 503);
  assert.match(down.json.error.message + JSON.stringify(down.json), /Redis/);
  const refused = await a.start(chat('x'), nextId('while-down'));
  assert.equal(refused.status, 503);
  // a cancel on the instance running the job stops it at once, but cannot be confirmed: 503
  const cancelled = await a.cancel(other);
  assert.equal(cancelled.status, 503, cancelled.text);
  // /health says so (the process itself is alive)
  await waitUntil(async () => (await b.get('/health')).status === 503, { what: '/health 503' });
  const health = (await b.get('/health')).json;
  assert.equal(health.status, 'unavailable');
  assert.equal(health.broker.ready, false);
  assert.match(health.broker.reason, /Redis at .* is unavailable/);
  await sleep(500);
  await redis.start();
  await waitUntil(async () => (await b.get('/health')).status === 200, { timeoutMs: 10_000, what: '/health 200' });
  const s = await waitStatus(a, id, ['completed'], 20_000);
  assert.equal(s.status, 'completed');
  const r = await onB.done;
  const fresh = await readSSE(streamUrl(nodes[2].url, id));
  assert.equal(fresh.stored.length, 150 + 5);
  assert.equal(framesOf(r.text), framesOf(fresh.text), 'the observer that lived through the outage saw everything');
  for (const n of nodes) assert.equal(n.exited(), null, 'no instance died');
  // the cancel made while Redis was down was kept and written once it was back
  assert.equal((await waitStatus(b, other, ['cancelled'], 10_000)).status, 'cancelled');
});

test('an instance stopped with SIGTERM cancels its jobs in Redis before it exits', opts, async () => {
  const leaving = await startServer(redisArgs(redis.url));
  const id = nextId('sigterm');
  assert.equal((await client(leaving.url).start(chat(words(2000)), id)).status, 200);
  const onA = openSSE(streamUrl(nodes[0].url, id), { timeoutMs: 20_000 });
  await onA.waitFor((e) => e.event === 'content_block_delta', 5000);
  await leaving.stop();  // asserts exit code 0
  const r = await onA.done;
  const ev = r.stored.map((e) => e.json);
  assert.equal(ev.at(-1).type, 'message_stop');
  assert.equal(ev.at(-2).delta.stop_reason, 'cancelled');
  assert.equal((await clients[1].status(id)).json.status, 'cancelled');
});

test('a Redis that cannot be reached at start-up, or a bad URL, is a clear start-up error', opts, async () => {
  const { spawnSync } = await import('node:child_process');
  const { SPOOL_BIN } = await import('./lib/harness.mjs');
  const run = (url) => spawnSync(SPOOL_BIN, ['serve', '--port', '0', '--broker', 'redis', '--redis-url', url],
    { encoding: 'utf8', timeout: 15_000 });
  const down = run('redis://127.0.0.1:1');
  assert.equal(down.status, 1, down.stderr);
  assert.match(down.stderr, /Redis at 127\.0\.0\.1:1 is unavailable/);
  const bad = run('http://127.0.0.1:6379');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /redis URL 'http:\/\/127\.0\.0\.1:6379'.*redis:\/\//);
});
