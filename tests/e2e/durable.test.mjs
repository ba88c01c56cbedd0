// The single node's durable store: streams survive a restart, graceful (SIGTERM) or not
// (SIGKILL); streams that were running end as "interrupted by restart"; a data directory that
// cannot hold the store is a clear start-up error.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { serversPerTest, freshDataDir } from './lib/harness.mjs';
import { client, chat, words, waitStatus, streamUrl } from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';

// Servers a test started: killed after it, so a failed assertion leaves none running.
const startServer = serversPerTest(afterEach);

let seq = 0;
const nextId = (tag) => `dur-${tag}-${process.pid}-${++seq}`;
/** The SSE body without ping frames. */
const framesOf = (text) => text.split('\n\n').filter((f) => f && !f.startsWith('event: ping')).join('\n\n');

test('after a graceful restart, finished streams read the same and running ones are "interrupted by restart"', async () => {
  const dataDir = freshDataDir();
  const first = await startServer(['--mock-token-delay-ms', '20'], { dataDir });
  const c1 = client(first.url);
  const done = nextId('done');
  const running = nextId('running');
  assert.equal((await c1.start(chat(words(12)), done, { headers: { 'Idempotency-Key': `k-${done}` } })).status, 200);
  await waitStatus(c1, done);
  const before = await readSSE(streamUrl(first.url, done));
  const statusBefore = (await c1.status(done)).json;
  assert.equal((await c1.start(chat(words(2000)), running)).status, 200);
  const live = openSSE(streamUrl(first.url, running));
  await live.waitForCount(3, 5000, 'content_block_delta');
  await first.stop();
  // the observer that was connected got the end of the stream before its connection closed
  const seen = (await live.done).stored;
  assert.equal(seen.at(-1).event, 'error');
  assert.match(seen.at(-1).data, /interrupted by restart/);

  const second = await startServer(['--mock-token-delay-ms', '20'], { dataDir });
  const c2 = client(second.url);
  const after = await readSSE(streamUrl(second.url, done));
  assert.equal(framesOf(after.text), framesOf(before.text), 'a finished stream reads byte for byte the same');
  const statusAfter = (await c2.status(done)).json;
  assert.deepEqual({ ...statusAfter, metadata: { ...statusAfter.metadata, observers: 0 } },
    { ...statusBefore, metadata: { ...statusBefore.metadata, observers: 0 } });
  // resuming works as before
  const tail = await readSSE(streamUrl(second.url, done, '?last_event_id=3'));
  assert.equal(tail.stored[0].id, '4');
  // the running one: error, with everything its observer saw, then the error event
  const s = (await c2.status(running)).json;
  assert.equal(s.status, 'error');
  assert.equal(s.error_message, 'interrupted by restart');
  const log = await readSSE(streamUrl(second.url, running));
  assert.deepEqual(log.stored.map((e) => e.data), seen.map((e) => e.data));
  // both are listed, newest first, as before the restart
  const listed = (await c2.get('/v1/messages/async?limit=1000')).json.data.map((x) => x.message_id);
  assert.deepEqual(listed, [running, done]);
  // the Idempotency-Key still answers with the same job
  const again = await c2.start(chat(words(12)), done, { headers: { 'Idempotency-Key': `k-${done}` } });
  assert.equal(again.status, 200);
  assert.equal(again.json.message_id, done);
  await second.stop();
});

test('after SIGKILL, everything an observer saw is still there, and the job ends as "interrupted by restart"', async () => {
  const dataDir = freshDataDir();
  const first = await startServer(['--mock-token-delay-ms', '5'], { dataDir });
  const c1 = client(first.url);
  const ids = [nextId('kill'), nextId('kill'), nextId('kill')];
  for (const id of ids) assert.equal((await c1.start(chat(words(5000)), id)).status, 200);
  const watchers = ids.map((id) => openSSE(streamUrl(first.url, id)));
  await Promise.all(watchers.map((w) => w.waitForCount(20, 5000, 'content_block_delta')));
  first.proc.kill('SIGKILL');
  const seen = await Promise.all(watchers.map((w) => w.done.catch(() => w.result())));

  const second = await startServer([], { dataDir });
  const c2 = client(second.url);
  for (const [i, id] of ids.entries()) {
    const log = await readSSE(streamUrl(second.url, id));
    const stored = log.stored.map((e) => e.data);
    const saw = seen[i].stored.map((e) => e.data);
    assert.ok(stored.length > saw.length, `${id}: ${stored.length} stored, ${saw.length} seen`);
    assert.deepEqual(stored.slice(0, saw.length), saw, 'no event an observer saw is missing or different');
    assert.equal(log.stored.at(-1).event, 'error');
    assert.equal(Number(log.stored.at(-1).id), stored.length);
    const s = (await c2.status(id)).json;
    assert.equal(s.status, 'error');
    assert.equal(s.error_message, 'interrupted by restart');
    assert.equal(s.metadata.events, stored.length);
  }
  // a deleted stream stays deleted across a restart; new jobs run as usual
  assert.equal((await c2.remove(ids[0])).status, 200);
  const fresh = nextId('fresh');
  assert.equal((await c2.start(chat('after the crash'), fresh)).status, 200);
  await waitStatus(c2, fresh);
  second.proc.kill('SIGKILL');
  await second.exitPromise;
  const third = await startServer([], { dataDir });
  const c3 = client(third.url);
  assert.equal((await c3.status(ids[0])).status, 404);
  assert.equal((await c3.status(ids[1])).json.status, 'error');
  assert.equal(textOf((await readSSE(streamUrl(third.url, fresh))).events), 'after the crash');
  await third.stop();
});

test('a cancelled or deleted stream is stored before the request is answered', async () => {
  const dataDir = freshDataDir();
  const first = await startServer(['--mock-token-delay-ms', '20'], { dataDir });
  const c1 = client(first.url);
  const cancelled = nextId('cancelled');
  const deleted = nextId('deleted');
  for (const id of [cancelled, deleted]) assert.equal((await c1.start(chat(words(500)), id)).status, 200);
  assert.equal((await c1.cancel(cancelled)).status, 200);
  assert.equal((await c1.remove(deleted)).status, 200);
  first.proc.kill('SIGKILL');  // at once: nothing more gets a chance to be written
  await first.exitPromise;
  const second = await startServer([], { dataDir });
  const c2 = client(second.url);
  const s = (await c2.status(cancelled)).json;
  assert.equal(s.status, 'cancelled');
  const log = await readSSE(streamUrl(second.url, cancelled));
  assert.equal(log.stored.at(-1).event, 'message_stop');
  assert.equal((await c2.status(deleted)).status, 404);
  await second.stop();
});

test('expired streams stay expired after a restart', async () => {
  const dataDir = freshDataDir();
  const first = await startServer(['--mock-token-delay-ms', '0', '--stream-expiration', '1'], { dataDir });
  const c1 = client(first.url);
  const id = nextId('expire');
  assert.equal((await c1.start(chat('short'), id)).status, 200);
  await waitStatus(c1, id);
  await first.stop();
  await new Promise((r) => setTimeout(r, 1500));
  const second = await startServer(['--stream-expiration', '1'], { dataDir });
  const c2 = client(second.url);
  // restored, then swept within a sweep interval (1 s)
  const deadline = Date.now() + 5000;
  let status = (await c2.status(id)).status;
  while (status !== 404 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await c2.status(id)).status;
  }
  assert.equal(status, 404);
  await second.stop();
});

test('a data directory that cannot hold the store is a clear start-up error', async () => {
  const base = freshDataDir();
  // a path through a regular file
  fs.writeFileSync(path.join(base, 'file'), 'x');
  await assert.rejects(startServer([], { dataDir: path.join(base, 'file', 'data') }),
    (e) => /data directory .*cannot be created/.test(e.message) && /"code":1/.test(e.message));
  // a corrupt database file
  const corrupt = path.join(base, 'corrupt');
  fs.mkdirSync(corrupt);
  fs.writeFileSync(path.join(corrupt, 'spool.db'), Buffer.alloc(16384, 0x5a));
  await assert.rejects(startServer([], { dataDir: corrupt }),
    (e) => /is not a Spool database/.test(e.message) && /"code":1/.test(e.message));
  // a directory another running Spool uses
  const shared = freshDataDir();
  const owner = await startServer([], { dataDir: shared });
  await assert.rejects(startServer([], { dataDir: shared }), (e) => /in use by another Spool process/.test(e.message));
  await owner.stop();
  // without the store, nothing is written
  const none = freshDataDir();
  const volatile = await startServer(['--durable', 'false'], { dataDir: none });
  const id = nextId('volatile');
  assert.equal((await client(volatile.url).start(chat('x'), id)).status, 200);
  await volatile.stop();
  assert.deepEqual(fs.readdirSync(none), []);
});
