// The durable single node under a crash and at scale: `kill -9` while clients start jobs and
// observers stream them (every acknowledged start is there after the restart, every observer's
// bytes are a prefix of the stored log, running jobs end as "interrupted by restart", a resume
// with Last-Event-ID continues where its observer was), and a restart holding 100,000 finished
// streams (time to listen bounded, every stream still there).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { serversPerTest, freshDataDir, isSanitized } from './lib/harness.mjs';
import {
  client, request, chat, words, waitUntil, streamUrl, metricValue, ASYNC, TERMINAL,
} from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';

// Servers a test started: killed after it, so a failed assertion leaves none running.
const startServer = serversPerTest(afterEach);

let seq = 0;
const nextId = (tag) => `crash-${tag}-${process.pid}-${++seq}`;

/** The SSE text without ping frames (pings are not stored). */
const withoutPings = (text) => text.replace(/event: ping\ndata: \{"type":"ping"\}\n\n/g, '');
/** What a test compares of a frame: event, data and id. */
const triple = (e) => ({ event: e.event, data: e.data, id: e.id });

/** Runs fn over items with at most n at a time; resolves with the results in order. */
async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** A small deterministic generator, so a failing run can be replayed by its seed. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/**
 * Checks one stored log after a restart against what its start asked for: positions 1..n, one
 * terminal event and nothing after it, the status record agreeing with the log, the text the mock
 * engine echoes (whole when completed, a prefix when interrupted). Returns the status body.
 */
function checkStoredLog(id, job, log, st) {
  const ev = log.stored;
  assert.equal(log.status, 200, `${id}: stream after the restart answered ${log.status}`);
  assert.ok(ev.length >= 1, `${id}: empty log after the restart`);
  ev.forEach((e, i) => assert.equal(e.id, String(i + 1), `${id}: event ${i + 1} has id ${e.id}`));
  assert.equal(st.metadata.events, ev.length, `${id}: status says ${st.metadata.events} events, the log has ${ev.length}`);
  const terminal = ev.filter((e) => e.event === 'message_stop' || e.event === 'error');
  assert.equal(terminal.length, 1, `${id}: ${terminal.length} terminal events: ${ev.map((e) => e.event).join(',')}`);
  assert.ok(TERMINAL.includes(st.status), `${id}: status ${st.status} after the restart`);
  const text = textOf(ev);
  if (ev.at(-1).event === 'message_stop') {
    assert.equal(st.status, 'completed', `${id}: log ends with message_stop, status ${st.status} (${st.error_message})`);
    assert.equal(text, job.prompt, `${id}: completed text`);
  } else {
    assert.equal(ev.at(-1).event, 'error', `${id}: log ends with ${ev.at(-1).event}`);
    assert.match(ev.at(-1).data, /interrupted by restart/, `${id}: error event ${ev.at(-1).data}`);
    assert.equal(st.status, 'error', `${id}: log ends with an error event, status ${st.status}`);
    assert.equal(st.error_message, 'interrupted by restart', `${id}: error_message`);
    assert.ok(job.prompt.startsWith(text), `${id}: interrupted text is not a prefix of the prompt: ${JSON.stringify(text)}`);
  }
  assert.equal(st.message_id, id);
  assert.equal(st.metadata.model, job.model, `${id}: model`);
  assert.equal(st.metadata.message_count, job.messages.length, `${id}: message_count`);
  // the mock engine counts the words of every message as input tokens; message_start says so
  const inputWords = job.messages.reduce((n, m) => n + m.content.split(' ').length, 0);
  // (a job killed before its message_start was stored may say 0: nothing of its run was stored)
  const started = ev.find((e) => e.event === 'message_start');
  if (started) {
    assert.equal(started.json.message.usage.input_tokens, inputWords, `${id}: message_start usage`);
    assert.equal(st.metadata.usage.input_tokens, inputWords,
      `${id}: /status usage.input_tokens ${st.metadata.usage.input_tokens} after the restart, its stored message_start ` +
      `says ${inputWords} (status ${st.status}; stored log: ${ev.map((e) => e.event).join(',')})`);
  } else {
    assert.ok([0, inputWords].includes(st.metadata.usage.input_tokens), `${id}: input_tokens ${st.metadata.usage.input_tokens}`);
  }
  // the mock engine counts one output token per text delta
  const deltas = ev.filter((e) => e.event === 'content_block_delta').length;
  assert.equal(st.metadata.usage.output_tokens, deltas,
    `${id}: /status usage.output_tokens ${st.metadata.usage.output_tokens} after the restart, the stored log has ${deltas} ` +
    `text deltas (status ${st.status}, ${ev.length} events)`);
  if (st.status === 'completed') {
    const md = ev.find((e) => e.event === 'message_delta');
    assert.equal(md?.json?.usage?.output_tokens, deltas, `${id}: message_delta usage`);
  }
  assert.ok(st.completed_at && st.created_at <= st.completed_at, `${id}: created_at ${st.created_at}, completed_at ${st.completed_at}`);
  return st;
}

test('kill -9 under load: every acknowledged start survives, every observer saw a prefix of the stored log, ' +
  'running jobs end "interrupted by restart", Last-Event-ID resumes after the restart', { timeout: 180_000 }, async (t) => {
  const seed = Number(process.env.SPOOL_CRASH_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (SPOOL_CRASH_SEED replays the job shapes)`);
  const rand = rng(seed);
  const dataDir = freshDataDir();
  const args = ['--mock-token-delay-ms', '10', '--model', 'bench=mock:', '--model', 'alt=mock:'];
  const first = await startServer(args, { dataDir });

  const CLIENTS = 4;
  const OBSERVE_EVERY = 2;       // every 2nd acknowledged job gets an observer...
  const MAX_OBSERVERS = 150;     // ...while fewer than this many are open
  const acked = new Map();       // id -> {model, messages, prompt}
  const observers = [];          // {id, conn}
  const refusedUnexpectedly = [];
  let openObservers = 0;
  let running = true;
  let killedAt = null;

  const client1 = client(first.url);
  const loops = Array.from({ length: CLIENTS }, async (_, k) => {
    while (running) {
      const id = nextId(`load${k}`);
      const prompt = words(10 + Math.floor(rand() * 40), `t${k}x`);
      const model = rand() < 0.5 ? 'alt' : 'bench';
      const messages = rand() < 0.5
        ? [{ role: 'user', content: prompt }]
        : [{ role: 'user', content: 'earlier' }, { role: 'assistant', content: 'reply' }, { role: 'user', content: prompt }];
      let r;
      try {
        r = await client1.start({ model, max_tokens: 1000, messages }, id, { timeoutMs: 5000 });
      } catch {
        if (killedAt !== null) return;  // the server is gone: this start was never acknowledged
        continue;
      }
      if (r.status !== 200) {
        if (killedAt === null) refusedUnexpectedly.push(`${id}: ${r.status} ${r.text}`);
        continue;
      }
      acked.set(id, { model, messages, prompt });
      if (acked.size % OBSERVE_EVERY === 0 && openObservers < MAX_OBSERVERS) {
        const conn = openSSE(streamUrl(first.url, id), { timeoutMs: 60_000 });
        openObservers++;
        conn.done.catch(() => {}).finally(() => { openObservers--; });
        observers.push({ id, conn });
      }
    }
  });

  // Load for about two seconds, and until the kill will hit observers at every stage: some
  // that saw their job end, some in the middle of one.
  const t0 = Date.now();
  const stage = () => {
    let ended = 0;
    let middle = 0;
    for (const o of observers) {
      const ev = o.conn.events;
      if (ev.some((e) => e.event === 'message_stop')) ended++;
      else if (ev.filter((e) => e.event === 'content_block_delta').length >= 3) middle++;
    }
    return { ended, middle, acked: acked.size, observers: observers.length };
  };
  await waitUntil(() => {
    const s = stage();
    return Date.now() - t0 >= 2000 && s.ended >= 5 && s.middle >= 5 ? s : null;
  }, { timeoutMs: 30_000, intervalMs: 50, what: 'a load with observers both finished and mid-stream' });
  killedAt = Date.now();
  first.proc.kill('SIGKILL');
  running = false;
  await first.exitPromise;
  await Promise.all(loops);
  const before = stage();
  t.diagnostic(`at the kill: ${JSON.stringify(before)} after ${killedAt - t0} ms of load`);
  assert.deepEqual(refusedUnexpectedly, [], 'starts refused before the kill');
  const all = await Promise.all(observers.map(async (o) => {
    const r = await o.conn.done.catch(() => o.conn.result());
    return { id: o.id, status: r.status, text: r.text, stored: r.stored };
  }));
  // An observer whose request the kill cut off before its answer saw nothing: nothing to compare.
  const seen = all.filter((s) => s.status !== null);
  for (const s of seen) assert.equal(s.status, 200, `observer of ${s.id} got ${s.status}`);
  t.diagnostic(`${seen.length} observers answered before the kill, ${all.length - seen.length} cut off before their answer`);

  const k0 = performance.now();
  const second = await startServer(args, { dataDir, startTimeoutMs: 30_000 });
  t.diagnostic(`restart after kill -9 listened in ${Math.round(performance.now() - k0)} ms`);
  const c2 = client(second.url);

  // Every acknowledged start is there, ended, and agrees with its log.
  const ids = [...acked.keys()];
  const logs = new Map();
  let interrupted = 0;
  let completed = 0;
  await pool(ids, 16, async (id) => {
    const st = await c2.status(id);
    assert.equal(st.status, 200, `acknowledged start ${id} is missing after kill -9: ${st.status} ${st.text}`);
    const log = await readSSE(streamUrl(second.url, id), { timeoutMs: 20_000 });
    checkStoredLog(id, acked.get(id), log, st.json);
    logs.set(id, log);
    if (st.json.status === 'error') interrupted++; else completed++;
  });
  t.diagnostic(`${ids.length} acknowledged starts: ${completed} completed, ${interrupted} interrupted by restart`);
  assert.ok(interrupted > 0, 'the kill hit no running job: the test did not test the crash');

  // Every observer saw, event for event, a prefix of the stored log (and byte for byte).
  let cutMidStream = 0;
  let cutAndInterrupted = 0;
  for (const s of seen) {
    const log = logs.get(s.id);
    const stored = log.stored.map(triple);
    const saw = s.stored.map(triple);
    assert.ok(saw.length <= stored.length, `${s.id}: observer saw ${saw.length} events, ${stored.length} stored`);
    assert.deepEqual(stored.slice(0, saw.length), saw, `${s.id}: what the observer saw differs from the stored log`);
    const sawBytes = withoutPings(s.text);
    assert.ok(withoutPings(log.text).startsWith(sawBytes),
      `${s.id}: the observer's bytes are not a prefix of the stored log's\nsaw:    ${JSON.stringify(sawBytes.slice(-300))}\n` +
      `stored: ${JSON.stringify(withoutPings(log.text).slice(Math.max(0, sawBytes.length - 300), sawBytes.length + 100))}`);
    if (saw.at(-1)?.event === 'message_stop') {
      assert.equal(saw.length, stored.length, `${s.id}: the observer saw the end, the log goes on`);
    } else if (saw.length > 0) {
      // (its job may have completed before the kill, with the observer behind: the log then
      // ends with message_stop; checkStoredLog checked the end either way)
      cutMidStream++;
      if (stored.at(-1).event === 'error') cutAndInterrupted++;
    }
  }
  t.diagnostic(`${cutMidStream} observers cut mid-stream by the kill, ${cutAndInterrupted} of them on a job interrupted by it`);
  assert.ok(cutAndInterrupted > 0, 'no observer of a job the kill interrupted');

  // An observer that had reached position N resumes with Last-Event-ID: N from N + 1.
  await pool(seen.filter((s) => s.stored.length > 0), 16, async (s) => {
    const stored = logs.get(s.id).stored.map(triple);
    const n = Number(s.stored.at(-1).id);
    const headers = { 'Last-Event-ID': String(n) };
    if (n === stored.length) {
      const r = await request(second.url, 'GET', `${ASYNC}/${encodeURIComponent(s.id)}/stream`, { headers });
      assert.equal(r.status, 204, `${s.id}: a resume at the end of a terminal stream answers 204, got ${r.status}`);
      return;
    }
    const tail = await readSSE(streamUrl(second.url, s.id), { headers, timeoutMs: 20_000 });
    assert.equal(tail.status, 200);
    assert.equal(tail.stored[0]?.id, String(n + 1), `${s.id}: resume after ${n} started at ${tail.stored[0]?.id}`);
    assert.deepEqual(tail.stored.map(triple), stored.slice(n), `${s.id}: resume after ${n}`);
  });

  // The restarted node serves new jobs as usual.
  const fresh = nextId('fresh');
  assert.equal((await c2.start(chat('after the crash'), fresh)).status, 200);
  assert.equal(textOf((await readSSE(streamUrl(second.url, fresh))).events), 'after the crash');
  await second.stop(15_000);
});

/**
 * Starts jobs i = 0 .. n - 1 (id idOf(i), body bodyOf(i)) over `conns` keep-alive connections,
 * each with up to `depth` requests pipelined. Resolves with {ok, failures} once every start is
 * answered; rejects when a connection fails or after timeoutMs.
 */
function pipelinedStarts(base, n, { idOf, bodyOf, conns = 16, depth = 64, timeoutMs = 120_000 }) {
  const u = new URL(base);
  let next = 0;
  let ok = 0;
  const failures = [];
  const requestOf = (i) => {
    const body = JSON.stringify(bodyOf(i));
    return `POST ${ASYNC}?message_id=${encodeURIComponent(idOf(i))} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  const sockets = [];
  const run = Promise.all(Array.from({ length: conns }, () => new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    sockets.push(sock);
    sock.setEncoding('utf8');  // the answers are ASCII JSON: characters are bytes
    let buf = '';
    const inFlight = [];  // the i of each request not answered yet, in order
    let finished = false;
    const send = () => {
      let out = '';
      while (inFlight.length < depth && next < n) {
        inFlight.push(next);
        out += requestOf(next++);
      }
      if (out) sock.write(out);
      if (inFlight.length === 0) { finished = true; sock.end(); resolve(); }
    };
    sock.on('connect', send);
    sock.on('error', reject);
    sock.on('close', () => { if (!finished) reject(new Error(`connection closed with ${inFlight.length} starts unanswered`)); });
    sock.on('data', (d) => {
      buf += d;
      for (;;) {
        const h = buf.indexOf('\r\n\r\n');
        if (h < 0) break;
        const head = buf.slice(0, h);
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < h + 4 + len) break;
        const i = inFlight.shift();
        if (head.startsWith('HTTP/1.1 200 ')) ok++;
        else if (failures.length < 10) failures.push(`${idOf(i)}: ${head.split('\r\n')[0]} ${buf.slice(h + 4, h + 4 + len)}`);
        else failures.push(i);
        buf = buf.slice(h + 4 + len);
      }
      if (inFlight.length <= depth / 2) send();
    });
  })));
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => {
      for (const s of sockets) s.destroy();
      reject(new Error(`pipelined starts: only ${ok} of ${n} answered 200 after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return Promise.race([run, deadline]).finally(() => {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
  }).then(() => ({ ok, failures }));
}

const MANY = isSanitized() ? 20_000 : 100_000;

test(`restart with ${MANY.toLocaleString('en-US')} finished streams${isSanitized() ? ' (sanitized binary: 20,000 instead of 100,000)' : ''}: ` +
  'listening again within a bound, every stream still there', { timeout: 300_000 }, async (t) => {
  const dataDir = freshDataDir();
  const args = ['--mock-token-delay-ms', '0', '--max-active-streams', '1000000', '--max-retained-streams', '1000000'];
  const first = await startServer(args, { dataDir });
  const tag = `many-${process.pid}`;
  const idOf = (i) => `${tag}-${i}`;
  const promptOf = (i) => (i % 2 ? `p${i}` : `p${i} q${i}`);

  // Many keep-alive connections, each with many starts pipelined.
  const c1 = client(first.url);
  const t0 = performance.now();
  const made = await pipelinedStarts(first.url, MANY, { idOf, bodyOf: (i) => chat(promptOf(i)), conns: 16, depth: 64 });
  assert.deepEqual(made.failures, [], 'starts not answered 200');
  assert.equal(made.ok, MANY);
  const createMs = performance.now() - t0;
  t.diagnostic(`${MANY} starts in ${Math.round(createMs)} ms (${Math.round(MANY / (createMs / 1000))}/s)`);
  const counts = async (c) => {
    const m = await c.metrics();
    const by = {};
    for (const s of ['pending', 'processing', 'completed', 'cancelled', 'error']) {
      by[s] = metricValue(m, 'spool_streams', `status="${s}"`) ?? 0;
    }
    return by;
  };
  await waitUntil(async () => (await counts(c1)).completed === MANY,
    { timeoutMs: 60_000, intervalMs: 200, what: `${MANY} completed streams` });
  const s0 = performance.now();
  await first.stop(30_000);
  t.diagnostic(`SIGTERM with ${MANY} streams: exited after ${Math.round(performance.now() - s0)} ms`);

  const k0 = performance.now();
  const second = await startServer(args, { dataDir, startTimeoutMs: 60_000 });
  const restartMs = performance.now() - k0;
  t.diagnostic(`restart (SIGTERM) with ${MANY} streams: listening after ${Math.round(restartMs)} ms`);
  assert.ok(restartMs < 10_000, `listening only ${Math.round(restartMs)} ms after the restart (bound 10 s)`);

  const c2 = client(second.url);
  const after = await counts(c2);
  assert.deepEqual(after, { pending: 0, processing: 0, completed: MANY, cancelled: 0, error: 0 });

  // The list visits every stream exactly once.
  const listed = new Set();
  let cursor = null;
  for (let page = 0; page <= MANY / 1000 + 1; page++) {
    const r = await c2.get(`${ASYNC}?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { timeoutMs: 30_000 });
    assert.equal(r.status, 200, r.text.slice(0, 500));
    for (const s of r.json.data) {
      assert.ok(!listed.has(s.message_id), `${s.message_id} listed twice`);
      assert.equal(s.status, 'completed', `${s.message_id}: ${s.status}`);
      listed.add(s.message_id);
    }
    if (!r.json.has_more) break;
    cursor = r.json.next_cursor;
  }
  assert.equal(listed.size, MANY, 'streams listed after the restart');
  for (let i = 0; i < MANY; i++) if (!listed.has(idOf(i))) assert.fail(`${idOf(i)} is not listed after the restart`);

  // A sample (first, last and spread between) reads as it was written.
  const sample = [0, 1, MANY - 2, MANY - 1, ...Array.from({ length: 200 }, (_, k) => Math.floor((k * MANY) / 200) + 7)];
  await pool(sample, 16, async (i) => {
    const st = await c2.status(idOf(i));
    assert.equal(st.status, 200, `${idOf(i)}: ${st.status}`);
    assert.equal(st.json.status, 'completed');
    const log = await readSSE(streamUrl(second.url, idOf(i)));
    assert.equal(textOf(log.events), promptOf(i), `${idOf(i)}: text after the restart`);
    assert.equal(log.stored.length, st.json.metadata.events);
    assert.equal(log.stored.at(-1).event, 'message_stop');
  });
  await second.stop(30_000);
});
