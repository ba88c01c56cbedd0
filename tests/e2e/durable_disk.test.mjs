// The durable store's disk: deleted and expired streams give their segment files back
// (`--data-segment-bytes` closes a segment past that size; a segment no stored stream has
// records in is deleted), nothing reclaimed comes back after a restart, and a finished log that
// left memory is read back from the segments byte for byte, whole or resumed, also long ones.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { serversPerTest, freshDataDir } from './lib/harness.mjs';
import { client, chat, waitUntil, waitStatus, streamUrl, ASYNC } from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';

// Servers a test started: killed after it, so a failed assertion leaves none running.
const startServer = serversPerTest(afterEach);

let seq = 0;
const nextId = (tag) => `disk-${tag}-${process.pid}-${++seq}`;

/** Bytes of the segment files under dataDir/segments, and how many there are. */
function segments(dataDir) {
  const dir = path.join(dataDir, 'segments');
  let bytes = 0;
  let files = 0;
  for (const name of fs.readdirSync(dir)) {
    try {
      bytes += fs.statSync(path.join(dir, name)).size;
      files++;
    } catch { /* deleted between readdir and stat */ }
  }
  return { bytes, files };
}

/** n distinct words of about `len` characters each (so a log holds many bytes per event). */
function longWords(n, tag, len = 60) {
  return Array.from({ length: n }, (_, i) => `${tag}${i}-`.padEnd(len, 'abcdefghij')).join(' ');
}

/** The SSE text as stored frames (pings dropped). */
const framesOf = (text) => text.split('\n\n').filter((f) => f && !f.startsWith('event: ping')).map((f) => `${f}\n\n`);

const SEGMENT = 65536;

/** Starts `n` jobs of `tokens` long words each and waits until all are completed; returns their ids. */
async function bigStreams(c, n, tokens, tag) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const id = nextId(tag);
    const r = await c.start(chat(longWords(tokens, `${tag}${i}w`), { max_tokens: tokens + 10 }), id);
    assert.equal(r.status, 200, r.text);
    ids.push(id);
  }
  for (const id of ids) assert.equal((await waitStatus(c, id, undefined, 30_000)).status, 'completed');
  return ids;
}

test('deleting streams gives their segment files back; nothing deleted comes back after a restart', { timeout: 120_000 }, async (t) => {
  const dataDir = freshDataDir();
  const args = ['--mock-token-delay-ms', '0', '--data-segment-bytes', String(SEGMENT)];
  const first = await startServer(args, { dataDir });
  const c1 = client(first.url);
  // a few small streams that stay (written first, so they share the first segment)
  const kept = [];
  for (let i = 0; i < 3; i++) {
    const id = nextId('kept');
    assert.equal((await c1.start(chat(`kept stream ${i}`), id)).status, 200);
    kept.push(id);
    await waitStatus(c1, id);
  }
  const doomed = await bigStreams(c1, 40, 500, 'del');
  const full = segments(dataDir);
  t.diagnostic(`before the deletes: ${full.files} segments, ${full.bytes} bytes`);
  assert.ok(full.bytes > 2_000_000, `only ${full.bytes} bytes of segments for 40 streams of 500 long tokens`);
  assert.ok(full.files > 20, `only ${full.files} segment files with --data-segment-bytes ${SEGMENT}`);

  for (const id of doomed) assert.equal((await c1.remove(id)).status, 200);
  const t0 = Date.now();
  const shrunk = await waitUntil(() => {
    const s = segments(dataDir);
    return s.bytes < full.bytes * 0.25 ? s : null;
  }, { timeoutMs: 10_000, intervalMs: 50, what: `the segments to shrink below 25 % of ${full.bytes} bytes after the deletes` });
  t.diagnostic(`after the deletes: ${shrunk.files} segments, ${shrunk.bytes} bytes, ${Date.now() - t0} ms after the last delete answered`);

  const check = async (srv, when) => {
    const c = client(srv.url);
    for (const id of doomed) assert.equal((await c.status(id)).status, 404, `${id} came back ${when}`);
    for (const [i, id] of kept.entries()) {
      const st = await c.status(id);
      assert.equal(st.status, 200, `kept ${id} is missing ${when}`);
      assert.equal(st.json.status, 'completed');
      assert.equal(textOf((await readSSE(streamUrl(srv.url, id))).events), `kept stream ${i}`, `${id} ${when}`);
    }
    const listed = (await c.get(`${ASYNC}?limit=1000`)).json.data.map((s) => s.message_id);
    assert.deepEqual(listed.sort(), [...kept].sort(), `listed ${when}`);
    const s = segments(dataDir);
    assert.ok(s.bytes < full.bytes * 0.25, `${s.bytes} bytes of segments ${when} (${full.bytes} before the deletes)`);
  };
  // after kill -9 (the deletes were answered, so they are stored), then after a graceful restart
  first.proc.kill('SIGKILL');
  await first.exitPromise;
  const second = await startServer(args, { dataDir });
  await check(second, 'after kill -9 and a restart');
  await second.stop();
  const third = await startServer(args, { dataDir });
  await check(third, 'after a graceful restart');
  await third.stop();
});

test('expired streams give their segment files back, and stay gone after a restart', { timeout: 120_000 }, async (t) => {
  const dataDir = freshDataDir();
  const EXPIRE_S = 2;
  const args = ['--mock-token-delay-ms', '0', '--data-segment-bytes', String(SEGMENT), '--stream-expiration', String(EXPIRE_S)];
  const first = await startServer(args, { dataDir });
  const c1 = client(first.url);
  let peak = { bytes: 0, files: 0 };
  const watch = setInterval(() => {
    const s = segments(dataDir);
    if (s.bytes > peak.bytes) peak = s;
  }, 20);
  let ids;
  let lastCompleted;
  try {
    ids = await bigStreams(c1, 40, 500, 'exp');
    lastCompleted = Date.now();
    const s = segments(dataDir);
    if (s.bytes > peak.bytes) peak = s;
  } finally {
    clearInterval(watch);
  }
  t.diagnostic(`at most ${peak.files} segments, ${peak.bytes} bytes`);
  assert.ok(peak.bytes > 2_000_000, `only ${peak.bytes} bytes of segments for 40 streams of 500 long tokens`);
  // the last one is kept for the expiry period: it reads whole before it expires
  const last = await readSSE(streamUrl(first.url, ids.at(-1)));
  assert.equal(last.stored.at(-1).event, 'message_stop');

  const shrunk = await waitUntil(() => {
    const s = segments(dataDir);
    return s.bytes < peak.bytes * 0.25 ? s : null;
  }, { timeoutMs: EXPIRE_S * 1000 + 10_000, intervalMs: 100, what: `the segments to shrink below 25 % of ${peak.bytes} bytes after the expiry` });
  t.diagnostic(`${shrunk.files} segments, ${shrunk.bytes} bytes, ${Date.now() - lastCompleted} ms after the last stream completed`);
  for (const id of ids) assert.equal((await c1.status(id)).status, 404, `${id} outlived its expiry`);

  await first.stop();
  const second = await startServer(args, { dataDir });
  const c2 = client(second.url);
  for (const id of ids) assert.equal((await c2.status(id)).status, 404, `${id} came back after the restart`);
  assert.deepEqual((await c2.get(`${ASYNC}?limit=1000`)).json.data, []);
  const s = segments(dataDir);
  assert.ok(s.bytes < peak.bytes * 0.25, `${s.bytes} bytes of segments after the restart (${peak.bytes} at most before)`);
  await second.stop();
});

/**
 * Waits until `id` is completed with no observer left (its log may then leave memory), and
 * checks that reading it from the start, and resuming after `k` by header and by query, give
 * exactly the frames `liveFrames` a live observer received. `when` names the moment in messages.
 */
async function checkLateJoiners(srv, id, liveFrames, k, when) {
  const c = client(srv.url);
  await waitUntil(async () => {
    const r = await c.status(id);
    return r.status === 200 && r.json.status === 'completed' && r.json.metadata.observers === 0;
  }, { timeoutMs: 10_000, what: `${id} completed with no observer ${when}` });
  const timeoutMs = 60_000;
  // several at once, from the start
  const whole = await Promise.all([1, 2, 3].map(() => readSSE(streamUrl(srv.url, id), { timeoutMs })));
  for (const r of whole) {
    assert.equal(r.status, 200);
    const got = framesOf(r.text);
    assert.equal(got.length, liveFrames.length, `${id} ${when}: ${got.length} frames read back, ${liveFrames.length} seen live`);
    assert.ok(got.join('') === liveFrames.join(''), `${id} ${when}: read back from the start differs from what the live observer saw` +
      ` (first difference at frame ${got.findIndex((f, i) => f !== liveFrames[i])})`);
  }
  const byHeader = await readSSE(streamUrl(srv.url, id), { headers: { 'Last-Event-ID': String(k) }, timeoutMs });
  const byQuery = await readSSE(streamUrl(srv.url, id, `?last_event_id=${k}`), { timeoutMs });
  for (const r of [byHeader, byQuery]) {
    assert.equal(r.status, 200);
    assert.equal(r.stored[0]?.id, String(k + 1), `${id} ${when}: resume after ${k}`);
    const got = framesOf(r.text);
    assert.equal(got.length, liveFrames.length - k, `${id} ${when}: resume after ${k}`);
    assert.ok(got.join('') === liveFrames.slice(k).join(''), `${id} ${when}: resume after ${k} differs from what the live observer saw`);
  }
}

test('a late joiner of a finished stream that left memory reads it back byte for byte, whole or resumed, ' +
  'also after a restart, also 20,000 tokens long', { timeout: 180_000 }, async (t) => {
  const dataDir = freshDataDir();
  const first = await startServer(['--mock-token-delay-ms', '2'], { dataDir });
  const c1 = client(first.url);

  // watched by two observers while it ran (2 ms per token), then read back once nobody watches it
  const paced = nextId('paced');
  const pacedPrompt = longWords(400, 'pc', 20);
  assert.equal((await c1.start(chat(pacedPrompt), paced)).status, 200);
  const a = openSSE(streamUrl(first.url, paced), { timeoutMs: 30_000 });
  const b = openSSE(streamUrl(first.url, paced), { timeoutMs: 30_000 });
  const [live, live2] = await Promise.all([a.done, b.done]);
  assert.ok(live.body.equals(live2.body), 'two live observers saw different bytes');
  assert.equal(textOf(live.events), pacedPrompt);
  const pacedFrames = framesOf(live.text);
  assert.equal(pacedFrames.length, 405);
  await checkLateJoiners(first, paced, pacedFrames, 150, 'once it left memory');
  await checkLateJoiners(first, paced, pacedFrames, 404, 'once it left memory, resumed before its last event');

  // after a graceful restart (now at full speed, for the long one)
  await first.stop();
  const second = await startServer(['--mock-token-delay-ms', '0'], { dataDir });
  await checkLateJoiners(second, paced, pacedFrames, 200, 'after a graceful restart');

  // 20,000 tokens at full speed, its observer connected right after the start
  const c2 = client(second.url);
  const long = nextId('long');
  const longPrompt = longWords(20_000, 'lg', 12);
  assert.equal((await c2.start(chat(longPrompt, { max_tokens: 20_010 }), long)).status, 200);
  const longSeen = await readSSE(streamUrl(second.url, long), { timeoutMs: 60_000 });
  assert.equal(longSeen.status, 200);
  const longFrames = framesOf(longSeen.text);
  assert.equal(longFrames.length, 20_005, 'message_start, block start, 20,000 deltas, block stop, message_delta, message_stop');
  assert.equal(textOf(longSeen.events), longPrompt);
  t.diagnostic(`the long stream's log: ${longSeen.body.length} bytes`);
  await checkLateJoiners(second, long, longFrames, 12_345, 'once it left memory');

  // both again after kill -9 and a restart
  second.proc.kill('SIGKILL');
  await second.exitPromise;
  const third = await startServer(['--mock-token-delay-ms', '0'], { dataDir });
  await checkLateJoiners(third, paced, pacedFrames, 1, 'after kill -9 and a restart');
  await checkLateJoiners(third, long, longFrames, 19_999, 'after kill -9 and a restart');
  await third.stop();
});
