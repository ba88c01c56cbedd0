// §3 event sequence and shapes, §7 mock engine behaviour, observed through the async stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, streamUrl } from './lib/http.mjs';
import { readSSE, textOf, thinkingOf } from './lib/sse.mjs';

export const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const HEX32 = '[0-9a-f]{32}';

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '2']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

let seq = 0;
async function run(body) {
  const id = `ev-${process.pid}-${++seq}`;
  const r = await c.start(body, id);
  assert.equal(r.status, 200, r.text);
  await waitStatus(c, id);
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal(log.status, 200);
  const status = (await c.status(id)).json;
  return { id, log, ev: log.stored.map((e) => e.json), frames: log.stored, status };
}

/** Mock tokenization: words by ASCII whitespace keeping trailing whitespace, leading ws to the first. */
function mockTokens(text) {
  const m = text.match(/^[ \t\n\r\v\f]*[^ \t\n\r\v\f]+[ \t\n\r\v\f]*|[^ \t\n\r\v\f]+[ \t\n\r\v\f]*/g);
  return m ?? [];
}
const wordCount = (t) => t.split(/[ \t\n\r\v\f]+/).filter(Boolean).length;

function noNulls(obj, path, allowed) {
  if (obj === null) {
    assert.ok(allowed.includes(path), `null field at ${path} (null fields must be omitted)`);
    return;
  }
  if (typeof obj !== 'object') return;
  for (const [k, v] of Object.entries(obj)) noNulls(v, `${path}.${k}`, allowed);
}

/** Checks the block structure of a log; returns the blocks [{type, start, deltas, stop}]. */
function assertWellFormed(ev, { terminal = 'message_stop' } = {}) {
  assert.equal(ev[0].type, 'message_start');
  assert.equal(ev.filter((e) => e.type === 'message_start').length, 1);
  const blocks = [];
  let open = null;
  let i = 1;
  for (; i < ev.length; i++) {
    const e = ev[i];
    if (e.type === 'content_block_start') {
      assert.equal(open, null, 'block started while another is open');
      assert.equal(e.index, blocks.length, 'index counts blocks from 0');
      open = { type: e.content_block.type, start: e, deltas: [], stop: null };
      blocks.push(open);
    } else if (e.type === 'content_block_delta') {
      assert.ok(open, 'delta outside a block');
      assert.equal(e.index, open.start.index);
      assert.equal(e.block_id, open.start.block_id);
      open.deltas.push(e);
    } else if (e.type === 'content_block_stop') {
      assert.ok(open, 'stop outside a block');
      assert.equal(e.index, open.start.index);
      assert.equal(e.block_id, open.start.block_id);
      open.stop = e;
      open = null;
    } else break;
  }
  assert.equal(open, null, 'a block was left open');
  if (terminal === 'message_stop') {
    assert.equal(ev.length, i + 2, `after the blocks exactly message_delta + message_stop: ${ev.slice(i).map((e) => e.type)}`);
    assert.equal(ev[i].type, 'message_delta');
    assert.equal(ev[i + 1].type, 'message_stop');
    assert.deepEqual(ev[i + 1], { type: 'message_stop' });
  }
  return blocks;
}

test('plain text: exact sequence, shapes, ids, timestamps, usage', async () => {
  const prompt = 'The quick brown fox jumps over the lazy dog';
  const { ev, frames, log, status } = await run(chat(prompt));
  assert.deepEqual(ev.map((e) => e.type), [
    'message_start', 'content_block_start',
    ...Array(9).fill('content_block_delta'),
    'content_block_stop', 'message_delta', 'message_stop',
  ]);
  // Compact one-line JSON; event line equals the type.
  for (const f of frames) {
    assert.equal(f.dataLines, 1);
    assert.equal(f.data, JSON.stringify(JSON.parse(f.data)), 'data must be compact JSON');
    assert.equal(f.event, f.json.type);
  }
  const [ms, cbs] = ev;
  assert.deepEqual(Object.keys(ms), ['type', 'message']);
  assert.match(ms.message.id, new RegExp(`^msg_${HEX32}$`));
  assert.deepEqual(ms.message, {
    id: ms.message.id, type: 'message', role: 'assistant', content: [], model: status.metadata.model,
    usage: { input_tokens: 9, output_tokens: 0 },
  });
  assert.equal(typeof ms.message.model, 'string');
  assert.match(cbs.block_id, new RegExp(`^block_${HEX32}$`));
  assert.match(cbs.content_block.start_timestamp, TS);
  assert.deepEqual(cbs, {
    type: 'content_block_start', index: 0, block_id: cbs.block_id,
    content_block: { type: 'text', start_timestamp: cbs.content_block.start_timestamp, text: '' },
  });
  const deltas = ev.filter((e) => e.type === 'content_block_delta');
  for (const d of deltas) {
    assert.deepEqual(Object.keys(d), ['type', 'index', 'block_id', 'delta']);
    assert.deepEqual(Object.keys(d.delta), ['type', 'text']);
    assert.equal(d.delta.type, 'text_delta');
  }
  assert.deepEqual(deltas.map((d) => d.delta.text), mockTokens(prompt));
  const stop = ev.at(-3);
  assert.deepEqual(Object.keys(stop).sort(), ['block_id', 'index', 'stop_timestamp', 'type']);
  assert.equal(stop.index, 0);
  assert.equal(stop.block_id, cbs.block_id);
  assert.match(stop.stop_timestamp, TS);
  assert.ok(stop.stop_timestamp >= cbs.content_block.start_timestamp);
  assert.deepEqual(ev.at(-2), {
    type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { input_tokens: 9, output_tokens: 9 },
  });
  for (const e of ev) noNulls(e, e.type, ['message_delta.delta.stop_sequence']);
  assert.equal(textOf(log.events), prompt);
});

test('deltas concatenate to the exact text: whitespace, tabs, newlines, UTF-8 unescaped', async () => {
  const prompt = '  Leading spaces,\tTAB  double\n\nnewlines héllo wörld 😀 日本語 end  ';
  const { ev, frames } = await run(chat(prompt));
  const deltas = ev.filter((e) => e.type === 'content_block_delta').map((d) => d.delta.text);
  assert.equal(deltas.join(''), prompt);
  assert.deepEqual(deltas, mockTokens(prompt), 'one text_delta per whitespace-delimited token');
  const raw = frames.map((f) => f.data).join('\n');
  assert.ok(raw.includes('😀') && raw.includes('日本語') && raw.includes('héllo'), 'UTF-8 must be sent unescaped');
  assert.ok(!/\\u[0-9a-fA-F]{4}/.test(raw.replace(/\\u000[0-9a-fA-F]|\\u001[0-9a-fA-F]/g, '')), 'no \\u escapes for non-ASCII');
  assert.equal(ev.at(-2).usage.output_tokens, deltas.length);
});

test('echo is the last user message; text blocks joined with \\n; input_tokens counts all texts and system', async () => {
  const body = {
    model: 'default',
    max_tokens: 1000,
    system: [{ type: 'text', text: 'sys one' }, { type: 'text', text: 'sys two three' }],
    messages: [
      { role: 'user', content: 'first user words' },
      { role: 'assistant', content: [{ type: 'text', text: 'assistant says this' }] },
      { role: 'user', content: [{ type: 'text', text: 'last part one' }, { type: 'text', text: 'part two' }] },
    ],
  };
  const { ev, log } = await run(body);
  assert.equal(textOf(log.events), 'last part one\npart two');
  const expectedInput = 2 + 3 + 3 + 3 + 3 + 2;
  assert.equal(ev[0].message.usage.input_tokens, expectedInput);
  assert.equal(ev.at(-2).usage.input_tokens, expectedInput);
  assert.equal(ev.at(-2).usage.output_tokens, 5);
});

test('a trailing assistant message: the mock still echoes the last user message', async () => {
  const { log, ev } = await run({
    messages: [
      { role: 'user', content: 'echo this please' },
      { role: 'assistant', content: 'prefill' },
    ],
  });
  assert.equal(textOf(log.events), 'echo this please');
  assert.equal(ev[0].message.usage.input_tokens, 4);
});

for (const thinking of [{ enabled: true }, { type: 'enabled', budget_tokens: 1024 }]) {
  test(`thinking ${JSON.stringify(thinking)}: thinking block first, then text`, async () => {
    const prompt = 'alpha beta gamma delta epsilon zeta eta';
    const { ev, log, status } = await run(chat(prompt, { thinking }));
    const blocks = assertWellFormed(ev);
    assert.deepEqual(blocks.map((b) => b.type), ['thinking', 'text']);
    const tb = blocks[0].start;
    assert.match(tb.content_block.signature, new RegExp(`^sig_${HEX32}$`));
    assert.match(tb.content_block.start_timestamp, TS);
    assert.deepEqual(tb.content_block, {
      type: 'thinking', start_timestamp: tb.content_block.start_timestamp, thinking: '',
      signature: tb.content_block.signature,
    });
    // the signature again in a signature_delta, the block's last delta (as Anthropic sends it)
    const sig = blocks[0].deltas.at(-1);
    assert.deepEqual(sig.delta, { type: 'signature_delta', signature: tb.content_block.signature });
    for (const d of blocks[0].deltas.slice(0, -1)) {
      assert.deepEqual(Object.keys(d.delta), ['type', 'thinking']);
      assert.equal(d.delta.type, 'thinking_delta');
    }
    assert.equal(thinkingOf(log.events), 'Thinking about: alpha beta gamma delta epsilon');
    assert.equal(blocks[1].start.index, 1);
    assert.equal(textOf(log.events, 1), prompt);
    assert.equal(textOf(log.events, 0), '');
    assert.notEqual(blocks[0].start.block_id, blocks[1].start.block_id);
    assert.equal(ev.at(-2).delta.stop_reason, 'end_turn');
    assert.equal(status.metadata.thinking_enabled, true);
  });
}

for (const thinking of [{ enabled: false }, { type: 'disabled' }]) {
  test(`thinking ${JSON.stringify(thinking)}: no thinking block`, async () => {
    const { ev, status } = await run(chat('no thoughts here', { thinking }));
    const blocks = assertWellFormed(ev);
    assert.deepEqual(blocks.map((b) => b.type), ['text']);
    assert.equal(status.metadata.thinking_enabled, false);
  });
}

const TOOLS = [
  { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
  { name: 'get_time', input_schema: { type: 'object', properties: {} } },
];

function assertToolUse(ev, name) {
  const blocks = assertWellFormed(ev);
  const tools = blocks.filter((b) => b.type === 'tool_use');
  assert.equal(tools.length, 1, `exactly one tool_use block: ${blocks.map((b) => b.type)}`);
  assert.equal(blocks.at(-1).type, 'tool_use', 'the tool call is the last block');
  const cb = tools[0].start.content_block;
  assert.match(cb.id, new RegExp(`^tool_${HEX32}$`));
  assert.match(cb.start_timestamp, TS);
  assert.deepEqual(cb, { type: 'tool_use', start_timestamp: cb.start_timestamp, id: cb.id, name, input: {} });
  let json = '';
  for (const d of tools[0].deltas) {
    assert.equal(d.delta.type, 'input_json_delta');
    assert.equal(typeof d.delta.partial_json, 'string');
    json += d.delta.partial_json;
    assert.ok(d.delta.partial_json_obj && typeof d.delta.partial_json_obj === 'object', 'partial_json_obj');
  }
  assert.ok(tools[0].deltas.length >= 1, 'tool_use block carries input_json_delta');
  assert.deepEqual(JSON.parse(json), {}, 'partial_json fragments concatenate to the input exactly once');
  assert.deepEqual(tools[0].deltas.at(-1).delta.partial_json_obj, {});
  assert.deepEqual(ev.at(-2).delta, { stop_reason: 'tool_use', stop_sequence: null });
}

test('tool_choice any: tool_use block for the first tool, input_json_delta, stop_reason tool_use', async () => {
  const { ev } = await run(chat('what is the weather', { tools: TOOLS, tool_choice: { type: 'any' } }));
  assertToolUse(ev, 'get_weather');
});

test('tool_choice tool: tool_use block for the named tool', async () => {
  const { ev } = await run(chat('what time is it', { tools: TOOLS, tool_choice: { type: 'tool', name: 'get_time' } }));
  assertToolUse(ev, 'get_time');
});

for (const tc of [{ type: 'auto' }, { type: 'none' }]) {
  test(`tool_choice ${tc.type}: plain text reply, end_turn`, async () => {
    const { ev, log } = await run(chat('just talk', { tools: TOOLS, tool_choice: tc }));
    const blocks = assertWellFormed(ev);
    assert.deepEqual(blocks.map((b) => b.type), ['text']);
    assert.equal(textOf(log.events), 'just talk');
    assert.equal(ev.at(-2).delta.stop_reason, 'end_turn');
  });
}

test('max_tokens cut: stop_reason max_tokens and exactly max_tokens text tokens', async () => {
  const prompt = 'one two three four five six seven eight nine ten';
  const { ev, log } = await run(chat(prompt, { max_tokens: 4 }));
  assertWellFormed(ev);
  assert.equal(textOf(log.events), 'one two three four ');
  assert.deepEqual(ev.at(-2).delta, { stop_reason: 'max_tokens', stop_sequence: null });
  assert.equal(ev.at(-2).usage.output_tokens, 4);
});

test('max_tokens equal to the reply length is not a cut: end_turn', async () => {
  const prompt = 'one two three four';
  const { ev, log } = await run(chat(prompt, { max_tokens: 4 }));
  assert.equal(textOf(log.events), prompt);
  assert.equal(ev.at(-2).delta.stop_reason, 'end_turn');
});

for (const mt of [0, -5]) {
  test(`max_tokens ${mt} means engine default (no cut)`, async () => {
    const prompt = 'a b c d e f g';
    const { ev, log } = await run(chat(prompt, { max_tokens: mt }));
    assert.equal(textOf(log.events), prompt);
    assert.equal(ev.at(-2).delta.stop_reason, 'end_turn');
  });
}

test('stop_sequences: stop_reason stop_sequence with stop_sequence set', async () => {
  const prompt = 'one two STOP three four';
  const { ev, log } = await run(chat(prompt, { stop_sequences: ['NEVER', 'STOP'] }));
  assertWellFormed(ev);
  const text = textOf(log.events);
  assert.ok(prompt.startsWith(text), `text must be a prefix of the prompt: ${JSON.stringify(text)}`);
  assert.ok(!text.includes('STOP') && !text.includes('three'), `text must stop before the stop sequence: ${JSON.stringify(text)}`);
  assert.ok(text.startsWith('one two'), JSON.stringify(text));
  assert.deepEqual(ev.at(-2).delta, { stop_reason: 'stop_sequence', stop_sequence: 'STOP' });
});

test('stop_sequences spanning two tokens', async () => {
  const prompt = 'alpha beta gamma delta';
  const { ev, log } = await run(chat(prompt, { stop_sequences: ['beta gamma'] }));
  const text = textOf(log.events);
  assert.ok(prompt.startsWith(text) && !text.includes('gamma'), JSON.stringify(text));
  assert.deepEqual(ev.at(-2).delta, { stop_reason: 'stop_sequence', stop_sequence: 'beta gamma' });
});

test('stop_sequences that never occur: end_turn, stop_sequence null', async () => {
  const prompt = 'nothing to stop here';
  const { ev, log } = await run(chat(prompt, { stop_sequences: ['xyz'] }));
  assert.equal(textOf(log.events), prompt);
  assert.deepEqual(ev.at(-2).delta, { stop_reason: 'end_turn', stop_sequence: null });
});

test('block ids and message ids are unique across streams', async () => {
  const a = await run(chat('same prompt'));
  const b = await run(chat('same prompt'));
  assert.notEqual(a.ev[0].message.id, b.ev[0].message.id);
  assert.notEqual(a.ev[1].block_id, b.ev[1].block_id);
});
