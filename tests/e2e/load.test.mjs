// Load: 200 concurrent jobs, 3 live observers each plus a late joiner after completion.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, waitUntil, streamUrl, metricValue } from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';

const JOBS = 200;
const OBSERVERS = 3;

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '10']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

test(`${JOBS} concurrent jobs × ${OBSERVERS} observers + a late joiner: identical bytes, right text`, { timeout: 60_000 }, async () => {
  const t0 = Date.now();
  const jobs = await Promise.all(Array.from({ length: JOBS }, async (_, i) => {
    const id = `load-${process.pid}-${i}`;
    const prompt = `job ${i} says: ${Array.from({ length: 12 }, (_, k) => `w${i}x${k}`).join(' ')}`;
    const r = await c.start(chat(prompt), id);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.message_id, id);
    const observers = Array.from({ length: OBSERVERS }, () => openSSE(streamUrl(srv.url, id), { timeoutMs: 45_000 }));
    const results = await Promise.all(observers.map((o) => o.done));
    return { id, prompt, results };
  }));
  const live = Date.now() - t0;
  // Late joiners, once everything is completed.
  await Promise.all(jobs.map(async (j) => {
    const s = await waitStatus(c, j.id, 'completed', 20_000);
    j.status = s;
    j.late = await readSSE(streamUrl(srv.url, j.id), { timeoutMs: 20_000 });
  }));
  const msgIds = new Set();
  for (const j of jobs) {
    const ref = j.late;
    assert.equal(ref.status, 200);
    assert.equal(textOf(ref.events), j.prompt, `${j.id}: wrong text`);
    assert.equal(ref.stored.at(-1).event, 'message_stop');
    assert.equal(ref.stored.length, j.status.metadata.events);
    ref.stored.forEach((f, k) => assert.equal(f.id, String(k + 1)));
    msgIds.add(ref.stored[0].json.message.id);
    for (const [k, r] of j.results.entries()) {
      assert.equal(r.status, 200, `${j.id} observer ${k}`);
      assert.ok(r.body.equals(ref.body), `${j.id}: observer ${k} bytes differ from the late joiner's`);
    }
  }
  assert.equal(msgIds.size, JOBS, 'every job has its own message id');
  await waitUntil(async () => metricValue(await c.metrics(), 'spool_observers') === 0, { what: 'spool_observers == 0' });
  assert.equal(metricValue(await c.metrics(), 'spool_active_jobs'), 0);
  assert.ok(live < 45_000, `live phase took ${live} ms`);
});
