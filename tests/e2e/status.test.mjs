// §1.3 GET /v1/messages/async/{id}/status and §4.1 status transitions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitStatus, waitUntil, streamUrl, sleep, ASYNC } from './lib/http.mjs';
import { openSSE, readSSE } from './lib/sse.mjs';

const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const ORDER = ['pending', 'processing', 'completed'];

let srv;
let c;
before(async () => {
  // Two models: "echo" is the default (first), "second" is addressable by name.
  srv = await startServer(['--mock-token-delay-ms', '20', '--model', 'echo=mock:', '--model', 'second=mock:']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

let seq = 0;
const newId = (p) => `${p}-${process.pid}-${++seq}`;

function assertShape(s, id) {
  assert.deepEqual(Object.keys(s).sort(), [
    'completed_at', 'created_at', 'error_message', 'message_id', 'metadata', 'status', 'stream_type', 'updated_at',
  ]);
  assert.equal(s.message_id, id);
  assert.ok(['pending', 'processing', 'completed', 'cancelled', 'error'].includes(s.status), s.status);
  assert.match(s.created_at, TS);
  assert.match(s.updated_at, TS);
  assert.ok(s.updated_at >= s.created_at, 'updated_at >= created_at');
  assert.equal(s.stream_type, 'chat_completion');
  if (['completed', 'cancelled', 'error'].includes(s.status)) {
    assert.match(s.completed_at, TS);
    assert.ok(s.completed_at >= s.created_at);
  } else {
    assert.equal(s.completed_at, null);
  }
  if (s.status !== 'error') assert.equal(s.error_message, null);
  const m = s.metadata;
  assert.equal(typeof m, 'object');
  assert.equal(typeof m.message_count, 'number');
  assert.equal(typeof m.thinking_enabled, 'boolean');
  assert.equal(typeof m.model, 'string');
  assert.ok(Number.isInteger(m.events) && m.events >= 0);
  assert.ok(Number.isInteger(m.observers) && m.observers >= 0);
  assert.ok(Number.isInteger(m.usage.input_tokens));
  assert.ok(Number.isInteger(m.usage.output_tokens));
}

test('unknown id is 404 with the detail body', async () => {
  const id = newId('missing');
  const r = await c.status(id);
  assert.equal(r.status, 404);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(r.json, { detail: `Stream with message_id ${id} not found` });
});

test('status fields, formats and pending → processing → completed transitions', async () => {
  const id = newId('life');
  const prompt = words(15);
  const start = await c.start(chat(prompt), id);
  assert.equal(start.json.status, 'pending');
  const seen = [];
  const samples = [];
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = await c.status(id);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assertShape(r.json, id);
    samples.push(r.json);
    if (seen.at(-1) !== r.json.status) seen.push(r.json.status);
    if (r.json.status === 'completed') break;
    assert.ok(Date.now() < deadline, 'job did not complete in 5 s');
    await sleep(10);
  }
  // Statuses only move forward.
  const idx = seen.map((s) => ORDER.indexOf(s));
  assert.ok(idx.every((v) => v >= 0), `unexpected statuses ${seen}`);
  for (let i = 1; i < idx.length; i++) assert.ok(idx[i] > idx[i - 1], `status went backwards: ${seen}`);
  assert.ok(seen.includes('processing'), `a 15-token job at 20 ms must be seen processing: ${seen}`);
  const processing = samples.filter((s) => s.status === 'processing');
  for (const p of processing) assert.equal(p.completed_at, null);
  // Output usage grows while processing.
  const outs = processing.map((p) => p.metadata.usage.output_tokens);
  for (let i = 1; i < outs.length; i++) assert.ok(outs[i] >= outs[i - 1], 'usage.output_tokens never decreases');
  const created = samples.map((s) => s.created_at);
  assert.ok(created.every((v) => v === created[0]), 'created_at never changes');

  const done = samples.at(-1);
  assert.equal(done.metadata.usage.input_tokens, 15);
  assert.equal(done.metadata.usage.output_tokens, 15);
  assert.ok(done.completed_at >= (processing.at(-1)?.updated_at ?? done.created_at), 'completed_at after processing began');
  assert.ok(done.updated_at >= done.completed_at, 'updated_at is at least the terminal change');
  // completed_at is set once: nothing changes any more.
  await sleep(150);
  const later = (await c.status(id)).json;
  assert.deepEqual(later, done);
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal(done.metadata.events, log.stored.length, 'metadata.events is the log length');
  assert.equal(done.metadata.events, 15 + 5);
});

test('metadata.message_count counts messages after moving system messages out; thinking_enabled', async () => {
  const id = newId('meta');
  const body = {
    system: 'top level system',
    thinking: { enabled: true },
    messages: [
      { role: 'system', content: 'an inline system message' },
      { role: 'user', content: 'hi there' },
      { role: 'assistant', content: 'hello' },
      { role: 'user', content: 'again please' },
    ],
  };
  assert.equal((await c.start(body, id)).status, 200);
  const s = await waitStatus(c, id, 'completed');
  assertShape(s, id);
  assert.equal(s.metadata.message_count, 3);
  assert.equal(s.metadata.thinking_enabled, true);
  // input_tokens: words of all message texts and the system prompt (inline system moved into it).
  assert.equal(s.metadata.usage.input_tokens, 3 + 4 + 2 + 1 + 2);
  assert.equal(s.metadata.usage.output_tokens, 2);
});

test('metadata.model: default, claude-* alias and a named model', async () => {
  const cases = [['default', 'echo'], [undefined, 'echo'], ['claude-3-haiku', 'echo'], ['claude-sonnet-4-5', 'echo'], ['second', 'second'], ['echo', 'echo']];
  for (const [model, expected] of cases) {
    const id = newId('model');
    const body = { messages: [{ role: 'user', content: 'which model' }] };
    if (model !== undefined) body.model = model;
    const r = await c.start(body, id);
    assert.equal(r.status, 200, `model ${model}: ${r.text}`);
    const s = await waitStatus(c, id, 'completed');
    assert.equal(s.metadata.model, expected, `model ${model}`);
    const log = await readSSE(streamUrl(srv.url, id));
    assert.equal(log.stored[0].json.message.model, expected, `message_start.model for ${model}`);
  }
});

test('metadata.observers counts open observers', async () => {
  const id = newId('obs');
  assert.equal((await c.start(chat(words(60)), id)).status, 200);
  const a = openSSE(streamUrl(srv.url, id));
  const b = openSSE(streamUrl(srv.url, id));
  await Promise.all([a.waitFor('message_start'), b.waitFor('message_start')]);
  await waitUntil(async () => (await c.status(id)).json.metadata.observers === 2, { what: 'observers == 2', timeoutMs: 2000 });
  a.abort();
  await waitUntil(async () => (await c.status(id)).json.metadata.observers === 1, { what: 'observers == 1', timeoutMs: 2000 });
  b.abort();
  await waitUntil(async () => (await c.status(id)).json.metadata.observers === 0, { what: 'observers == 0', timeoutMs: 2000 });
  assert.equal((await c.cancel(id)).status, 200);
});

test('status of a cancelled stream: cancelled, completed_at set once, updated_at matches', async () => {
  const id = newId('cstat');
  assert.equal((await c.start(chat(words(100)), id)).status, 200);
  await waitStatus(c, id, 'processing');
  assert.equal((await c.cancel(id)).status, 200);
  const s1 = (await c.status(id)).json;
  assertShape(s1, id);
  assert.equal(s1.status, 'cancelled');
  await sleep(100);
  assert.equal((await c.cancel(id)).status, 200);
  const s2 = (await c.status(id)).json;
  assert.deepEqual(s2, s1, 'a terminal stream never changes');
});

test('the status route is addressable with a percent-encoded id', async () => {
  const id = `enc:id@${process.pid}+é`;
  assert.equal((await c.start(chat('encoded'), id)).status, 200);
  const r = await c.get(`${ASYNC}/${encodeURIComponent(id)}/status`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.message_id, id);
});
