// §1.2 GET /v1/messages/async/{id}/stream — observing, replay, resume, pings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitStatus, waitUntil, streamUrl, assertErrorBody, sleep, request, ASYNC } from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '20']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

let seq = 0;
const newId = (p) => `${p}-${process.pid}-${++seq}`;

/** Checks the raw framing of a complete SSE body: event/data/id lines only, ids 1-based contiguous. */
function assertFraming(text, firstId = 1) {
  assert.ok(text.endsWith('\n\n'), 'body must end with a blank line');
  const blocks = text.slice(0, -2).split('\n\n');
  let expect = firstId;
  for (const block of blocks) {
    const lines = block.split('\n');
    const ev = lines.filter((l) => l.startsWith('event: '));
    const da = lines.filter((l) => l.startsWith('data: '));
    const ids = lines.filter((l) => l.startsWith('id: '));
    assert.equal(ev.length, 1, `frame needs one event line: ${JSON.stringify(block)}`);
    assert.equal(da.length, 1, `frame needs one data line: ${JSON.stringify(block)}`);
    assert.equal(lines.length, ev.length + da.length + ids.length, `unexpected lines in frame: ${JSON.stringify(block)}`);
    const type = ev[0].slice(7);
    const data = JSON.parse(da[0].slice(6));
    assert.equal(data.type, type, 'event line must name the data type');
    if (type === 'ping') {
      assert.equal(ids.length, 0, 'pings are not stored and carry no id');
      assert.deepEqual(data, { type: 'ping' });
      continue;
    }
    assert.equal(ids.length, 1, `stored frame needs an id line: ${JSON.stringify(block)}`);
    assert.equal(ids[0], `id: ${expect}`, 'ids must be 1-based and contiguous');
    expect++;
  }
  return expect - 1;
}

test('unknown id: 404 JSON detail before any SSE byte', async () => {
  const id = newId('nope');
  const r = await c.get(`${ASYNC}/${id}/stream`, { headers: { Accept: 'text/event-stream' } });
  assert.equal(r.status, 404);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(r.json, { detail: `Stream with message_id ${id} not found` });
  assert.ok(!r.text.includes('event:'));
});

test('replays from the first event, continues live, closes within 100 ms of message_stop', async () => {
  const id = newId('live');
  const prompt = words(40); // ~0.8 s of tokens
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  await waitUntil(async () => (await c.status(id)).json.metadata.events >= 6, { what: '6 events' });
  const o = openSSE(streamUrl(srv.url, id));
  const { status, headers } = await o.response;
  assert.equal(status, 200);
  assert.equal(headers['content-type'], 'text/event-stream; charset=utf-8');
  const res = await o.done;
  const ev = res.stored;
  assert.equal(ev[0].event, 'message_start', 'replay starts with the first event');
  assert.equal(ev[0].id, '1');
  assert.equal(ev.at(-1).event, 'message_stop');
  assert.equal(textOf(ev), prompt);
  // Some events arrived live, well after the replayed ones.
  assert.ok(ev.at(-1).t - ev[0].t > 200, `expected live events after the replay (span ${ev.at(-1).t - ev[0].t} ms)`);
  const n = assertFraming(res.text);
  const st = await c.status(id);
  assert.equal(n, st.json.metadata.events, 'observer got every stored event');
  const lag = res.closeAt - ev.at(-1).t;
  assert.ok(lag < 100, `server closed ${lag.toFixed(1)} ms after message_stop (must be < 100 ms)`);
});

test('several observers and a late joiner get byte-identical bodies', async () => {
  const id = newId('multi');
  const prompt = words(25);
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  const a = openSSE(streamUrl(srv.url, id));
  await sleep(120);
  const b = openSSE(streamUrl(srv.url, id));
  await sleep(120);
  const d = openSSE(streamUrl(srv.url, id));
  const [ra, rb, rd] = await Promise.all([a.done, b.done, d.done]);
  await waitStatus(c, id, 'completed');
  const late = await readSSE(streamUrl(srv.url, id));
  assert.equal(textOf(ra.events), prompt);
  for (const r of [rb, rd, late]) {
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(ra.body), 'observer bodies differ');
  }
  assertFraming(late.text);
  const lag = late.closeAt - late.stored.at(-1).t;
  assert.ok(lag < 100, `late joiner closed ${lag.toFixed(1)} ms after message_stop`);
});

test('disconnecting an observer does not cancel the job', async () => {
  const id = newId('disc');
  const prompt = words(20);
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  const o = openSSE(streamUrl(srv.url, id));
  await o.waitForCount(4, 5000, 'content_block_delta');
  o.abort();
  await o.done;
  const s = await waitStatus(c, id);
  assert.equal(s.status, 'completed');
  await waitUntil(async () => (await c.status(id)).json.metadata.observers === 0, { what: 'observers back to 0' });
  const full = await readSSE(streamUrl(srv.url, id));
  assert.equal(textOf(full.events), prompt);
  assert.equal(full.stored.at(-2).json.delta.stop_reason, 'end_turn');
});

async function completedStream(prompt = 'resume me please now') {
  const id = newId('res');
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  await waitStatus(c, id, 'completed');
  const full = await readSSE(streamUrl(srv.url, id));
  return { id, full };
}

test('with both a Last-Event-ID header and ?last_event_id=, the header wins (a browser\'s own reconnection)', async () => {
  const c = client(srv.url);
  const id = `both-${process.pid}`;
  assert.equal((await c.start(chat(words(8)), id)).status, 200);
  await waitStatus(c, id, 'completed');
  const r = await readSSE(streamUrl(srv.url, id, '?last_event_id=2'), { headers: { 'Last-Event-ID': '6' } });
  assert.equal(r.stored[0].id, '7');
});

test('resume with Last-Event-ID / ?last_event_id=N gives exactly the events after N', async () => {
  const { id, full } = await completedStream();
  const total = full.stored.length;
  assert.ok(total >= 7);
  const frames = full.text.slice(0, -2).split('\n\n').map((f) => f + '\n\n');
  assert.equal(frames.length, total);
  for (const n of [0, 1, 3, total - 1]) {
    const expected = frames.slice(n).join('');
    const h = await readSSE(streamUrl(srv.url, id), { headers: { 'Last-Event-ID': String(n) } });
    assert.equal(h.status, 200);
    assert.equal(h.text, expected, `Last-Event-ID ${n}`);
    assert.equal(h.stored[0].id, String(n + 1));
    const q = await readSSE(streamUrl(srv.url, id, `?last_event_id=${n}`));
    assert.equal(q.status, 200);
    assert.equal(q.text, expected, `?last_event_id=${n}`);
  }
});

test('resume beyond the current end waits for new events, skipping nothing after N', async () => {
  const id = newId('beyond');
  const prompt = words(40);
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  const e = await waitUntil(async () => {
    const s = await c.status(id);
    return s.json.metadata.events >= 3 ? s.json.metadata.events : 0;
  }, { what: '3 events' });
  const n = e + 4;
  const o = openSSE(streamUrl(srv.url, id), { headers: { 'Last-Event-ID': String(n) } });
  const r = await o.done;
  assert.equal(r.status, 200);
  const ids = r.stored.map((f) => Number(f.id));
  assert.equal(ids[0], n + 1, `first event after Last-Event-ID ${n}`);
  ids.forEach((v, i) => assert.equal(v, n + 1 + i, 'contiguous ids'));
  assert.equal(r.stored.at(-1).event, 'message_stop');
  // The events it received are the log's own bytes.
  const full = await readSSE(streamUrl(srv.url, id));
  assert.ok(full.text.endsWith(r.text), 'resumed body must be a suffix of the full log');
});

// ("1.5" is well formed since ids name their incarnation: position 1 of the fifth; incarnation.test.mjs)
for (const bad of ['abc', '-1', '1.', '1.0', '.5', '1.5.1', '0x10', '12abc']) {
  test(`malformed resume position ${JSON.stringify(bad)} is 400`, async () => {
    const { id } = await completedStream('bad position');
    const h = await c.get(`${ASYNC}/${id}/stream`, { headers: { 'Last-Event-ID': bad } });
    assertErrorBody(assert, h, 400, 'invalid_request_error');
    const q = await c.get(`${ASYNC}/${id}/stream?last_event_id=${encodeURIComponent(bad)}`);
    assertErrorBody(assert, q, 400, 'invalid_request_error');
  });
}

test('resume of a terminal stream with nothing after N is 204 No Content', async () => {
  const { id, full } = await completedStream('all done here');
  const total = full.stored.length;
  for (const n of [total, total + 1, total + 100]) {
    const h = await c.get(`${ASYNC}/${id}/stream`, { headers: { 'Last-Event-ID': String(n) } });
    assert.equal(h.status, 204, `Last-Event-ID ${n}: ${h.status} ${h.text}`);
    assert.equal(h.raw.length, 0);
    const q = await c.get(`${ASYNC}/${id}/stream?last_event_id=${n}`);
    assert.equal(q.status, 204, `?last_event_id=${n}: ${q.status} ${q.text}`);
    assert.equal(q.raw.length, 0);
  }
  // Also a cancelled stream.
  const id2 = newId('res-cancel');
  assert.equal((await c.start(chat(words(100)), id2)).status, 200);
  assert.equal((await c.cancel(id2)).status, 200);
  const n2 = (await c.status(id2)).json.metadata.events;
  assert.equal((await c.get(`${ASYNC}/${id2}/stream?last_event_id=${n2}`)).status, 204);
});

test('an observer of a still-pending/just-started job gets the whole message', async () => {
  // Open the observer in the same tick as the start answer arrives.
  const id = newId('early');
  const prompt = 'early bird gets the worm';
  const r = await request(srv.url, 'POST', `${ASYNC}?message_id=${id}`, { json: chat(prompt) });
  assert.equal(r.status, 200);
  const o = await readSSE(streamUrl(srv.url, id));
  assert.equal(o.stored[0].event, 'message_start');
  assert.equal(textOf(o.events), prompt);
  assertFraming(o.text);
});

test('pings after the idle interval, not stored, ids stay contiguous', async () => {
  const slow = await startServer(['--mock-token-delay-ms', '700', '--ping-interval', '0.3']);
  try {
    const sc = client(slow.url);
    const id = newId('ping');
    const prompt = 'one two three';
    assert.equal((await sc.start(chat(prompt), id)).status, 200);
    const o = openSSE(streamUrl(slow.url, id), { timeoutMs: 10_000 });
    const r = await o.done;
    const pings = r.events.filter((e) => e.event === 'ping');
    assert.ok(pings.length >= 3, `expected several pings over ~2 s of 0.7 s token gaps, got ${pings.length}`);
    for (const p of pings) {
      assert.equal(p.data, '{"type":"ping"}');
      assert.equal(p.id, null, 'ping must carry no id');
    }
    // Each ping follows at least ~0.3 s of silence.
    const all = r.events;
    for (let i = 1; i < all.length; i++) {
      if (all[i].event === 'ping') {
        const gap = all[i].t - all[i - 1].t;
        assert.ok(gap >= 250, `ping after only ${gap.toFixed(0)} ms of silence`);
      }
    }
    // No silence much longer than the interval.
    for (let i = 1; i < all.length; i++) {
      const gap = all[i].t - all[i - 1].t;
      assert.ok(gap < 650, `silence of ${gap.toFixed(0)} ms with ping interval 0.3 s`);
    }
    assertFraming(r.text);
    assert.equal(textOf(r.events), prompt);
    const st = await sc.status(id);
    assert.equal(st.json.metadata.events, r.stored.length, 'pings must not be stored');
    // A late joiner sees no pings at all.
    const late = await readSSE(streamUrl(slow.url, id));
    assert.equal(late.events.filter((e) => e.event === 'ping').length, 0);
    assert.equal(late.stored.length, r.stored.length);
  } finally {
    await slow.stop();
  }
});
