// §1.4 cancel, §1.5 delete, §3.3 cancelled terminal events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitStatus, streamUrl, sleep, ASYNC } from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';

let srv;
let c;
let frozen; // a server whose mock waits a minute between tokens
let fc;
before(async () => {
  [srv, frozen] = await Promise.all([
    startServer(['--mock-token-delay-ms', '20']),
    startServer(['--mock-token-delay-ms', '60000']),
  ]);
  c = client(srv.url);
  fc = client(frozen.url);
});
after(async () => { await Promise.all([srv.stop(), frozen.stop()]); });

let seq = 0;
const newId = (p) => `${p}-${process.pid}-${++seq}`;
const notFound = (id) => ({ detail: `Stream with message_id ${id} not found` });

/** Asserts a cancelled log: well-formed blocks, then message_delta(cancelled) + message_stop. */
function assertCancelledLog(ev) {
  assert.equal(ev[0].type, 'message_start', 'a cancelled log starts with message_start');
  assert.deepEqual(ev.at(-1), { type: 'message_stop' });
  const md = ev.at(-2);
  assert.equal(md.type, 'message_delta');
  assert.deepEqual(md.delta, { stop_reason: 'cancelled', stop_sequence: null });
  const textDeltas = ev.filter((e) => e.type === 'content_block_delta' && e.delta.type === 'text_delta').length;
  assert.equal(md.usage.output_tokens, textDeltas, 'usage so far');
  assert.equal(md.usage.input_tokens, ev[0].message.usage.input_tokens);
  let open = null;
  for (const e of ev.slice(1, -2)) {
    if (e.type === 'content_block_start') { assert.equal(open, null); open = e.index; }
    else if (e.type === 'content_block_delta') assert.equal(e.index, open);
    else if (e.type === 'content_block_stop') { assert.equal(e.index, open); open = null; }
    else assert.fail(`unexpected ${e.type} inside a cancelled log`);
  }
  assert.equal(open, null, 'the open block must get its content_block_stop');
  return textDeltas;
}

test('cancel of an unknown id is 404', async () => {
  const id = newId('nope');
  const r = await c.cancel(id);
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, notFound(id));
});

test('cancel of a running job: 200 after the terminal events are stored; observers get them and are closed', async () => {
  const id = newId('run');
  const prompt = words(200); // ~4 s
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  const o1 = openSSE(streamUrl(srv.url, id));
  const o2 = openSSE(streamUrl(srv.url, id));
  await Promise.all([o1.waitForCount(3, 5000, 'content_block_delta'), o2.waitForCount(3, 5000, 'content_block_delta')]);
  const r = await c.request('POST', `${ASYNC}/${id}/cancel`, { body: 'this body is ignored {', headers: { 'Content-Type': 'text/plain' } });
  const cancelAt = performance.now();
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(r.json, { message: 'Stream cancelled successfully', message_id: id });
  // Status is already terminal when the answer arrives.
  const s = (await c.status(id)).json;
  assert.equal(s.status, 'cancelled');
  assert.ok(s.completed_at);
  // The log already ends with the cancel terminal events.
  const late = await readSSE(streamUrl(srv.url, id));
  const ev = late.stored.map((e) => e.json);
  const n = assertCancelledLog(ev);
  assert.ok(n >= 3 && n < 200, `cancelled after ${n} tokens`);
  assert.equal(ev.at(-3).type, 'content_block_stop', 'the open text block is closed');
  assert.ok(prompt.startsWith(textOf(late.events)));
  assert.equal(s.metadata.events, ev.length);
  // Observers receive the same bytes and are closed promptly.
  const [r1, r2] = await Promise.all([o1.done, o2.done]);
  for (const rr of [r1, r2]) {
    assert.ok(rr.body.equals(late.body), 'observer body differs from the stored log');
    assert.ok(rr.closeAt - cancelAt < 500, `observer closed ${(rr.closeAt - cancelAt).toFixed(0)} ms after the cancel answer`);
  }
  // The engine is stopped: nothing is appended afterwards.
  await sleep(200);
  const s2 = (await c.status(id)).json;
  assert.equal(s2.metadata.events, ev.length);
  assert.equal(s2.metadata.usage.output_tokens, n);
  // Nothing else changed either; only the observer count moves as observers close.
  const withoutObservers = (st) => ({ ...st, metadata: { ...st.metadata, observers: undefined } });
  assert.deepEqual(withoutObservers(s2), withoutObservers(s));
  assert.equal(s2.metadata.observers, 0);
});

test('cancel of a terminal stream is 200 and changes nothing', async () => {
  const id = newId('term');
  assert.equal((await c.start(chat('already finished'), id)).status, 200);
  const s1 = await waitStatus(c, id, 'completed');
  const log1 = await readSSE(streamUrl(srv.url, id));
  const r = await c.cancel(id);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { message: 'Stream cancelled successfully', message_id: id });
  assert.deepEqual((await c.status(id)).json, s1, 'status must not change');
  const log2 = await readSSE(streamUrl(srv.url, id));
  assert.ok(log2.body.equals(log1.body), 'log must not change');
  assert.equal(log2.stored.at(-2).json.delta.stop_reason, 'end_turn');
  // A cancelled stream stays cancelled.
  const id2 = newId('twice');
  assert.equal((await c.start(chat(words(100)), id2)).status, 200);
  assert.equal((await c.cancel(id2)).status, 200);
  const c1 = (await c.status(id2)).json;
  const l1 = await readSSE(streamUrl(srv.url, id2));
  const again = await c.cancel(id2);
  assert.equal(again.status, 200);
  assert.deepEqual(again.json, { message: 'Stream cancelled successfully', message_id: id2 });
  assert.deepEqual((await c.status(id2)).json, c1);
  assert.ok((await readSSE(streamUrl(srv.url, id2))).body.equals(l1.body));
});

test('cancel right after start (engine stuck before its next token) yields a well-formed log', async () => {
  const id = newId('early');
  const t0 = performance.now();
  assert.equal((await fc.start(chat('never gets far at all'), id)).status, 200);
  const r = await fc.cancel(id);
  assert.equal(r.status, 200, r.text);
  assert.ok(performance.now() - t0 < 1000, 'cancel must not wait for the engine\'s token delay');
  const s = (await fc.status(id)).json;
  assert.equal(s.status, 'cancelled');
  const log = await readSSE(streamUrl(frozen.url, id));
  const ev = log.stored.map((e) => e.json);
  const n = assertCancelledLog(ev);
  assert.ok(n <= 1, `at most the first token before the 60 s delay, got ${n}`);
  assert.equal(log.stored.map((f) => f.id).join(','), ev.map((_, i) => i + 1).join(','));
});

test('cancel while a thinking block is open closes that block', async () => {
  const id = newId('think');
  assert.equal((await fc.start(chat('think about this for a while', { thinking: { enabled: true } }), id)).status, 200);
  const o = openSSE(streamUrl(frozen.url, id));
  await o.waitFor('content_block_start');
  assert.equal((await fc.cancel(id)).status, 200);
  const r = await o.done;
  const ev = r.stored.map((e) => e.json);
  assertCancelledLog(ev);
  const starts = ev.filter((e) => e.type === 'content_block_start');
  assert.equal(starts[0].content_block.type, 'thinking');
  assert.equal(ev.at(-3).type, 'content_block_stop');
  assert.equal(r.closeAt - r.stored.at(-1).t < 100, true, 'observer closed promptly after message_stop');
});

test('delete of an unknown id is 404', async () => {
  const id = newId('nope');
  const r = await c.remove(id);
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, notFound(id));
});

test('delete of a running stream closes its observers, answers 200 null, then everything is 404 and the id is reusable', async () => {
  const id = newId('del');
  assert.equal((await c.start(chat(words(200)), id)).status, 200);
  const o1 = openSSE(streamUrl(srv.url, id));
  const o2 = openSSE(streamUrl(srv.url, id));
  await Promise.all([o1.waitForCount(2, 5000, 'content_block_delta'), o2.waitForCount(2, 5000, 'content_block_delta')]);
  const r = await c.remove(id);
  const delAt = performance.now();
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(r.text.trim(), 'null');
  const [r1, r2] = await Promise.all([o1.done, o2.done]);
  for (const rr of [r1, r2]) {
    assert.equal(rr.aborted, false);
    assert.ok(rr.closeAt - delAt < 1000, `observer closed ${(rr.closeAt - delAt).toFixed(0)} ms after delete`);
    assert.ok(rr.stored.length >= 4);
    assert.ok(!rr.stored.some((e) => e.event === 'error'), 'delete is not an engine error');
  }
  for (const [name, res] of [
    ['status', await c.status(id)],
    ['stream', await c.get(`${ASYNC}/${id}/stream`)],
    ['stream resume', await c.get(`${ASYNC}/${id}/stream?last_event_id=2`)],
    ['cancel', await c.cancel(id)],
    ['delete', await c.remove(id)],
  ]) {
    assert.equal(res.status, 404, `${name} after delete: ${res.status} ${res.text}`);
    assert.deepEqual(res.json, notFound(id), name);
  }
  // The id may be used again, and it is a fresh stream: its second incarnation (§1.2).
  assert.equal((await c.start(chat('second life'), id)).status, 200);
  const s = await waitStatus(c, id, 'completed');
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal(textOf(log.events), 'second life');
  assert.equal(log.stored[0].id, '1.2');
  assert.equal(s.metadata.incarnation, 2);
  assert.equal(s.metadata.events, log.stored.length);
});

test('delete of a completed stream: 200 null, then 404', async () => {
  const id = newId('delc');
  assert.equal((await c.start(chat('done then deleted'), id)).status, 200);
  await waitStatus(c, id, 'completed');
  const r = await c.remove(id);
  assert.equal(r.status, 200);
  assert.equal(r.text.trim(), 'null');
  assert.equal((await c.status(id)).status, 404);
});

test('delete of a stream stuck before its next token returns promptly', async () => {
  const id = newId('delf');
  assert.equal((await fc.start(chat('frozen stream here'), id)).status, 200);
  const o = openSSE(streamUrl(frozen.url, id));
  await o.waitFor('content_block_start');
  const t0 = performance.now();
  const r = await fc.remove(id);
  assert.equal(r.status, 200);
  assert.ok(performance.now() - t0 < 1000);
  const rr = await o.done;
  assert.ok(rr.closeAt - t0 < 1000);
  assert.equal((await fc.status(id)).status, 404);
});
