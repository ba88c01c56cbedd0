// §1.6 synchronous POST /v1/messages, §1.7 count_tokens and validate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitUntil, metricValue, assertErrorBody, assertSchemaError } from './lib/http.mjs';
import { openSSE, textOf, thinkingOf } from './lib/sse.mjs';

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '5']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

async function streamCount() {
  const m = await c.metrics();
  let sum = 0;
  for (const st of ['pending', 'processing', 'completed', 'cancelled', 'error']) {
    const v = metricValue(m, 'spool_streams', `status="${st}"`);
    assert.ok(v !== undefined, `metric spool_streams{status="${st}"} missing`);
    sum += v;
  }
  return sum;
}

function assertMessage(m) {
  assert.deepEqual(Object.keys(m).sort(), ['content', 'id', 'model', 'role', 'stop_reason', 'stop_sequence', 'type', 'usage']);
  assert.match(m.id, /^msg_[0-9a-f]+$/);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.ok(Array.isArray(m.content));
  assert.equal(typeof m.model, 'string');
  assert.deepEqual(Object.keys(m.usage).sort(), ['input_tokens', 'output_tokens']);
}

test('stream false: the folded message object', async () => {
  const before1 = await streamCount();
  const prompt = 'fold  me into\tone message ';
  for (const extra of [{}, { stream: false }, { stream: null }]) {
    const r = await c.post('/v1/messages', chat(prompt, extra));
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const m = r.json;
    assertMessage(m);
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0].type, 'text');
    assert.equal(m.content[0].text, prompt);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.deepEqual(m.usage, { input_tokens: 5, output_tokens: 5 });
  }
  // The internal job is deleted when the response ends.
  await waitUntil(async () => (await streamCount()) === before1, { what: 'internal sync streams removed', timeoutMs: 2000 });
});

test('stream false: thinking, tool_use, max_tokens and stop_sequence fold correctly', async () => {
  const prompt = 'alpha beta gamma delta epsilon zeta';
  let r = await c.post('/v1/messages', chat(prompt, { thinking: { type: 'enabled', budget_tokens: 1024 } }));
  assert.equal(r.status, 200, r.text);
  assertMessage(r.json);
  assert.deepEqual(r.json.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(r.json.content[0].thinking, 'Thinking about: alpha beta gamma delta epsilon');
  assert.match(r.json.content[0].signature, /^sig_[0-9a-f]{32}$/);
  assert.equal(r.json.content[1].text, prompt);

  r = await c.post('/v1/messages', chat(prompt, { tools: [{ name: 'lookup', input_schema: { type: 'object' } }], tool_choice: { type: 'any' } }));
  assert.equal(r.status, 200, r.text);
  assertMessage(r.json);
  const tu = r.json.content.filter((b) => b.type === 'tool_use');
  assert.equal(tu.length, 1);
  assert.equal(tu[0].name, 'lookup');
  assert.match(tu[0].id, /^tool_[0-9a-f]{32}$/);
  assert.deepEqual(tu[0].input, {});
  assert.equal(r.json.stop_reason, 'tool_use');

  r = await c.post('/v1/messages', chat(prompt, { max_tokens: 2 }));
  assert.equal(r.status, 200);
  assert.equal(r.json.content[0].text, 'alpha beta ');
  assert.equal(r.json.stop_reason, 'max_tokens');
  assert.equal(r.json.usage.output_tokens, 2);

  r = await c.post('/v1/messages', chat(prompt, { stop_sequences: ['delta'] }));
  assert.equal(r.status, 200);
  assert.equal(r.json.stop_reason, 'stop_sequence');
  assert.equal(r.json.stop_sequence, 'delta');
  assert.ok(!r.json.content[0].text.includes('delta'));
});

test('stream true: SSE in the observer format, closed promptly', async () => {
  const prompt = 'stream this reply back';
  const o = openSSE(`${srv.url}/v1/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(chat(prompt, { stream: true })),
  });
  const r = await o.done;
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
  const ev = r.stored.map((e) => e.json);
  assert.deepEqual(ev.map((e) => e.type), [
    'message_start', 'content_block_start', ...Array(4).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop',
  ]);
  assert.match(ev[0].message.id, /^msg_[0-9a-f]{32}$/);
  assert.equal(textOf(r.events), prompt);
  assert.deepEqual(ev.at(-2), { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 4, output_tokens: 4 } });
  for (const f of r.stored) assert.equal(f.event, f.json.type);
  assert.ok(r.closeAt - r.stored.at(-1).t < 100, 'closed promptly after message_stop');
});

test('stream true with thinking: thinking deltas then text', async () => {
  const o = openSSE(`${srv.url}/v1/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(chat('one two three', { stream: true, thinking: { enabled: true } })),
  });
  const r = await o.done;
  assert.equal(r.status, 200);
  assert.equal(thinkingOf(r.events), 'Thinking about: one two three');
  assert.equal(textOf(r.events), 'one two three');
});

test('stream true: a client that disconnects mid-stream cancels the internal job', async () => {
  const slow = await startServer(['--mock-token-delay-ms', '50']);
  try {
    const sc = client(slow.url);
    const o = openSSE(`${slow.url}/v1/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(chat(words(200), { stream: true })), // ~10 s if not cancelled
    });
    await o.waitForCount(3, 5000, 'content_block_delta');
    const active = metricValue(await sc.metrics(), 'spool_active_jobs');
    assert.equal(active, 1, 'one job runs while the client reads');
    o.abort();
    const t0 = Date.now();
    await waitUntil(async () => metricValue(await sc.metrics(), 'spool_active_jobs') === 0,
      { what: 'spool_active_jobs to drop to 0', timeoutMs: 1500 });
    assert.ok(Date.now() - t0 < 1500);
    // Nothing is left behind: the internal stream was removed.
    await waitUntil(async () => {
      const m = await sc.metrics();
      return ['pending', 'processing', 'completed', 'cancelled', 'error']
        .every((st) => metricValue(m, 'spool_streams', `status="${st}"`) === 0);
    }, { what: 'no streams left', timeoutMs: 1500 });
  } finally {
    await slow.stop();
  }
});

test('POST /v1/messages with an invalid body is a §5 400', async () => {
  const r = await c.post('/v1/messages', { model: 'default', messages: [] });
  assertErrorBody(assert, r, 400, 'invalid_request_error');
});

test('count_tokens: words of all message texts and the system prompt', async () => {
  const before1 = await streamCount();
  let r = await c.post('/v1/messages/count_tokens', {
    model: 'default',
    system: 'be very brief',
    messages: [
      { role: 'user', content: 'one two three' },
      { role: 'assistant', content: [{ type: 'text', text: 'four five' }] },
      { role: 'user', content: [{ type: 'text', text: 'six' }, { type: 'text', text: 'seven eight' }] },
    ],
  });
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(r.json, { input_tokens: 11 });

  r = await c.post('/v1/messages/count_tokens', {
    model: 'claude-3-haiku',
    system: [{ type: 'text', text: 'a b' }, { type: 'text', text: 'c' }],
    messages: [{ role: 'user', content: 'd e f g' }],
    tools: [{ name: 't1', input_schema: { type: 'object' } }],
    tool_choice: { type: 'auto' },
    thinking: { type: 'enabled', budget_tokens: 2048 },
  });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { input_tokens: 7 });

  r = await c.post('/v1/messages/count_tokens', { model: 'default', messages: [{ role: 'user', content: 'x' }] });
  assert.deepEqual(r.json, { input_tokens: 1 });
  assert.equal(await streamCount(), before1, 'count_tokens must not create streams');
});

test('count_tokens: invalid body is 400', async () => {
  const r = await c.post('/v1/messages/count_tokens', { model: 'default' });
  assertErrorBody(assert, r, 400, 'invalid_request_error');
  const r2 = await c.post('/v1/messages/count_tokens', { model: 'default', messages: 'nope' });
  assertSchemaError(assert, r2, 'messages');
});

test('validate: valid body → {"valid":true,"errors":null}', async () => {
  const before1 = await streamCount();
  const r = await c.post('/v1/messages/validate', chat('looks fine', {
    tools: [{ name: 'a' }, { name: 'b' }], tool_choice: { type: 'tool', name: 'b' },
  }));
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(r.json, { valid: true, errors: null });
  assert.equal(await streamCount(), before1, 'validate must not create streams');
});

const ruleFailures = [
  ['empty messages', { messages: [] }],
  ['duplicate tool names', chat('x', { tools: [{ name: 'a' }, { name: 'a' }] })],
  ['tool_choice naming an unknown tool', chat('x', { tools: [{ name: 'a' }], tool_choice: { type: 'tool', name: 'zzz' } })],
  ['last message role system', { messages: [{ role: 'user', content: 'x' }, { role: 'system', content: 's' }] }],
];
for (const [name, body] of ruleFailures) {
  test(`validate: ${name} → 400 {"valid":false,"errors":[...]}`, async () => {
    const r = await c.post('/v1/messages/validate', body);
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['errors', 'valid'], r.text);
    assert.equal(r.json.valid, false);
    assert.ok(Array.isArray(r.json.errors) && r.json.errors.length > 0);
    for (const e of r.json.errors) assert.ok(typeof e === 'string' && e.length > 0);
  });
}

test('validate: schema failures give the §5 body with a detail list', async () => {
  const r = await c.post('/v1/messages/validate', { model: 42, messages: [{ role: 'user', content: 'x' }] });
  assertSchemaError(assert, r, 'model');
  const r2 = await c.post('/v1/messages/validate', { messages: [{ role: 'user', content: 'x' }], max_tokens: 'ten' });
  assertSchemaError(assert, r2, 'max_tokens');
});
