// The official Anthropic SDK against spool: wire compatibility of POST /v1/messages
// (plain and streamed) and of the async stream endpoint's SSE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { Stream } from '@anthropic-ai/sdk/streaming';
import { MessageStream } from '@anthropic-ai/sdk/lib/MessageStream';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, streamUrl, words } from './lib/http.mjs';

let srv;
let sdk;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '3']);
  sdk = new Anthropic({ baseURL: srv.url, apiKey: 'x', maxRetries: 0, timeout: 15_000 });
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

const USER = (text) => [{ role: 'user', content: text }];

test('messages.create returns the echoed text', async () => {
  const text = 'Hello from the SDK, twice  spaced.';
  const msg = await sdk.messages.create({ model: 'default', max_tokens: 100, messages: USER(text) });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.match(msg.id, /^msg_[0-9a-f]+$/);
  assert.equal(msg.content.length, 1);
  assert.equal(msg.content[0].type, 'text');
  assert.equal(msg.content[0].text, text);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.stop_sequence, null);
  assert.equal(msg.usage.input_tokens, 6);
  assert.equal(msg.usage.output_tokens, 6);
});

test('messages.create with a claude-* model name and a system prompt', async () => {
  const msg = await sdk.messages.create({
    model: 'claude-3-haiku-20240307', max_tokens: 100, system: 'be terse', messages: USER('aliased model'),
  });
  assert.equal(msg.content[0].text, 'aliased model');
  assert.equal(msg.usage.input_tokens, 4);
});

test('messages.stream yields text events and finalMessage folds to the same text', async () => {
  const text = 'streaming through the official client library';
  const stream = sdk.messages.stream({ model: 'default', max_tokens: 100, messages: USER(text) });
  const deltas = [];
  stream.on('text', (d) => deltas.push(d));
  const types = [];
  for await (const ev of stream) types.push(ev.type);
  const final = await stream.finalMessage();
  assert.equal(deltas.join(''), text);
  assert.equal(deltas.length, 6, 'one text event per token');
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.equal(final.content.length, 1);
  assert.equal(final.content[0].type, 'text');
  assert.equal(final.content[0].text, text);
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.stop_sequence, null);
  assert.equal(final.usage.output_tokens, 6);
  assert.equal(await stream.finalText(), text);
});

test('messages.create with stream:true returns an async iterable of events', async () => {
  const events = await sdk.messages.create({ model: 'default', max_tokens: 100, stream: true, messages: USER('raw event iteration') });
  let text = '';
  let stop = null;
  for await (const ev of events) {
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    if (ev.type === 'message_delta') stop = ev.delta.stop_reason;
  }
  assert.equal(text, 'raw event iteration');
  assert.equal(stop, 'end_turn');
});

test('thinking enabled: finalMessage has a thinking block then a text block', async () => {
  const stream = sdk.messages.stream({
    model: 'default', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: USER('one two three four five six'),
  });
  const thoughts = [];
  stream.on('thinking', (d) => thoughts.push(d));
  const final = await stream.finalMessage();
  assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(final.content[0].thinking, 'Thinking about: one two three four five');
  assert.match(final.content[0].signature, /^sig_[0-9a-f]{32}$/);
  assert.equal(thoughts.join(''), 'Thinking about: one two three four five');
  assert.equal(final.content[1].text, 'one two three four five six');
  const plain = await sdk.messages.create({
    model: 'default', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: USER('think first'),
  });
  assert.deepEqual(plain.content.map((b) => b.type), ['thinking', 'text']);
});

test('tool_choice any: finalMessage ends with a tool_use block and stop_reason tool_use', async () => {
  const params = {
    model: 'default', max_tokens: 100, messages: USER('weather in Paris?'),
    tools: [{ name: 'get_weather', description: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
    tool_choice: { type: 'any' },
  };
  const stream = sdk.messages.stream(params);
  const final = await stream.finalMessage();
  const tu = final.content.filter((b) => b.type === 'tool_use');
  assert.equal(tu.length, 1);
  assert.equal(final.content.at(-1).type, 'tool_use');
  assert.equal(tu[0].name, 'get_weather');
  assert.match(tu[0].id, /^tool_[0-9a-f]{32}$/);
  assert.deepEqual(tu[0].input, {});
  assert.equal(final.stop_reason, 'tool_use');
  const plain = await sdk.messages.create(params);
  assert.equal(plain.stop_reason, 'tool_use');
  assert.deepEqual(plain.content.filter((b) => b.type === 'tool_use').map((b) => [b.name, b.input]), [['get_weather', {}]]);
});

test('a tool round trip: the SDK sends tool_result back and gets the echo', async () => {
  const msg = await sdk.messages.create({
    model: 'default', max_tokens: 100,
    tools: [{ name: 'calc', input_schema: { type: 'object' } }],
    messages: [
      { role: 'user', content: 'compute' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'calc', input: { a: 1 } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '2' }, { type: 'text', text: 'now answer' }] },
    ],
  });
  assert.equal(msg.content[0].text, 'now answer');
});

test('stop_sequences and max_tokens through the SDK', async () => {
  const a = await sdk.messages.create({ model: 'default', max_tokens: 100, stop_sequences: ['END'], messages: USER('go go END more') });
  assert.equal(a.stop_reason, 'stop_sequence');
  assert.equal(a.stop_sequence, 'END');
  const b = await sdk.messages.create({ model: 'default', max_tokens: 2, messages: USER('a b c d') });
  assert.equal(b.stop_reason, 'max_tokens');
  assert.equal(b.content[0].text, 'a b ');
});

test('SDK errors: a 400 surfaces as BadRequestError with the §5 body', async () => {
  await assert.rejects(
    sdk.messages.create({ model: 'default', max_tokens: 100, messages: [] }),
    (e) => {
      assert.equal(e.status, 400);
      assert.ok(e instanceof Anthropic.BadRequestError);
      assert.equal(e.error?.type, 'error');
      assert.equal(e.error?.error?.type, 'invalid_request_error');
      return true;
    },
  );
});

test('count_tokens through the SDK', async () => {
  const r = await sdk.messages.countTokens({ model: 'default', system: 'x y', messages: USER('one two three') });
  assert.equal(r.input_tokens, 5);
});

test('an async job\'s stream endpoint parsed by the SDK (Stream.fromSSEResponse + MessageStream)', async () => {
  const id = `sdk-async-${process.pid}`;
  const text = words(30);
  assert.equal((await c.start(chat(text), id)).status, 200);
  // Live: parse the observer SSE with the SDK's own parser while the job runs.
  const res = await fetch(streamUrl(srv.url, id));
  assert.equal(res.status, 200);
  const events = Stream.fromSSEResponse(res, new AbortController());
  const ms = MessageStream.fromReadableStream(events.toReadableStream());
  const final = await ms.finalMessage();
  assert.equal(final.content[0].type, 'text');
  assert.equal(final.content[0].text, text);
  assert.equal(final.stop_reason, 'end_turn');
  await waitStatus(c, id, 'completed');
  // And a late read of the completed log, event by event.
  const res2 = await fetch(streamUrl(srv.url, id));
  let t = '';
  const seen = [];
  for await (const ev of Stream.fromSSEResponse(res2, new AbortController())) {
    seen.push(ev.type);
    if (ev.type === 'content_block_delta') t += ev.delta.text;
  }
  assert.equal(t, text);
  assert.equal(seen[0], 'message_start');
  assert.equal(seen.at(-1), 'message_stop');
});

test('an async job that ends in cancellation folds via the SDK with stop_reason cancelled', async () => {
  const id = `sdk-cancel-${process.pid}`;
  assert.equal((await c.start(chat(words(400)), id)).status, 200);
  await waitStatus(c, id, 'processing');
  assert.equal((await c.cancel(id)).status, 200);
  const res = await fetch(streamUrl(srv.url, id));
  const ms = MessageStream.fromReadableStream(Stream.fromSSEResponse(res, new AbortController()).toReadableStream());
  const final = await ms.finalMessage();
  assert.equal(final.stop_reason, 'cancelled');
  assert.ok(words(400).startsWith(final.content[0].text));
});
