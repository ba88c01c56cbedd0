// The `llama` engine end to end: the real binary runs a tiny random-weight GGUF (made by
// make_tiny_gguf from llama.cpp's phi-3 vocabulary) in-process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from './lib/harness.mjs';
import { makeTinyModel, tinyModelMissing } from './lib/llama.mjs';
import { client, chat, waitStatus, waitUntil, streamUrl } from './lib/http.mjs';
import { readSSE, textOf } from './lib/sse.mjs';


let dir;
let srv;
let c;
before(async () => {
  if (tinyModelMissing) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-llama-e2e-'));
  const model = makeTinyModel(path.join(dir, 'tiny.gguf'));
  const config = path.join(dir, 'spool.toml');
  fs.writeFileSync(config, [
    '[[models]]', 'name = "tiny"', 'engine = "llama"', `target = "${model}"`, 'parallel = 1', 'context = 256', 'threads = 1', '',
    '[[models]]', 'name = "broken"', 'engine = "llama"', `target = "${path.join(dir, 'missing.gguf')}"`, '',
  ].join('\n'));
  srv = await startServer(['--config', config]);
  c = client(srv.url);
});
after(async () => {
  if (srv) await srv.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const opts = { skip: tinyModelMissing };

test('a llama job streams a well-formed message with real token counts', opts, async () => {
  const id = `llama-${process.pid}-1`;
  assert.equal((await c.start(chat('hello there', { model: 'tiny', max_tokens: 8, seed: 3 }), id)).status, 200);
  const r = await readSSE(streamUrl(srv.url, id));
  const ev = r.stored.map((e) => e.json);
  assert.equal(ev[0].type, 'message_start');
  assert.ok(ev[0].message.usage.input_tokens > 2);
  assert.equal(ev.at(-1).type, 'message_stop');
  const md = ev.at(-2);
  assert.equal(md.type, 'message_delta');
  assert.ok(['end_turn', 'max_tokens'].includes(md.delta.stop_reason), md.delta.stop_reason);
  assert.ok(md.usage.output_tokens >= 1 && md.usage.output_tokens <= 8);
  if (md.delta.stop_reason === 'max_tokens') assert.equal(md.usage.output_tokens, 8);
  const s = (await c.status(id)).json;
  assert.equal(s.status, 'completed');
  assert.equal(s.metadata.model, 'tiny');
  assert.deepEqual(s.metadata.usage, md.usage);
  // the same seed gives the same reply
  const id2 = `llama-${process.pid}-2`;
  await c.start(chat('hello there', { model: 'tiny', max_tokens: 8, seed: 3 }), id2);
  const r2 = await readSSE(streamUrl(srv.url, id2));
  assert.equal(textOf(r2.events), textOf(r.events));
});

test('count_tokens uses the model tokenizer; the sync route folds a llama reply', opts, async () => {
  const a = await c.post('/v1/messages/count_tokens', { model: 'tiny', messages: [{ role: 'user', content: 'hello there' }] });
  assert.equal(a.status, 200);
  const b = await c.post('/v1/messages/count_tokens', { model: 'tiny', messages: [{ role: 'user', content: 'hello there and much more text here' }] });
  assert.ok(b.json.input_tokens > a.json.input_tokens);
  const m = await c.post('/v1/messages', chat('hello there', { model: 'tiny', max_tokens: 4, seed: 1 }));
  assert.equal(m.status, 200, m.text);
  assert.equal(m.json.model, 'tiny');
  assert.equal(m.json.usage.input_tokens, a.json.input_tokens, 'the job counts its prompt as count_tokens does');
  assert.ok(m.json.usage.output_tokens >= 1 && m.json.usage.output_tokens <= 4);
});

test('jobs beyond parallel wait pending with a queue position, then run', opts, async () => {
  const ids = [0, 1, 2].map((i) => `llama-q-${process.pid}-${i}`);
  for (const id of ids) assert.equal((await c.start(chat('queue', { model: 'tiny', max_tokens: 200 }), id)).status, 200);
  await waitUntil(async () => (await c.status(ids[2])).json.metadata.queue_position >= 1,
    { timeoutMs: 5000, what: 'a queue position on the third job' });
  const s = (await c.status(ids[2])).json;
  assert.equal(s.status, 'pending');
  for (const id of ids) await waitStatus(c, id, 'completed', 60_000);
  assert.equal((await c.status(ids[2])).json.metadata.queue_position, null);
});

test('cancel stops a llama job; a missing model file is an error event', opts, async () => {
  const id = `llama-c-${process.pid}`;
  await c.start(chat('go', { model: 'tiny', max_tokens: 100000 }), id);
  await waitUntil(async () => (await c.status(id)).json.metadata.usage.output_tokens >= 2, { timeoutMs: 5000 });
  assert.equal((await c.cancel(id)).status, 200);
  const s = (await c.status(id)).json;
  assert.equal(s.status, 'cancelled');
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal(log.stored.at(-2).json.delta.stop_reason, 'cancelled');

  const bad = `llama-b-${process.pid}`;
  await c.start(chat('x', { model: 'broken' }), bad);
  const st = await waitStatus(c, bad, 'error');
  assert.match(st.error_message, /not found/);
  const elog = await readSSE(streamUrl(srv.url, bad));
  assert.equal(elog.stored.at(-1).json.type, 'error');
  assert.match(elog.stored.at(-1).json.detail, /missing\.gguf/);
});
