// The `openai` and `anthropic` engines against a real upstream: llama.cpp's own `llama-server`,
// built from the same source bundle as the in-process engine (scripts/build-llama-tools.sh),
// serving the tiny random-weight model on loopback. Greedy decoding (temperature 0) makes
// llama-server's own answer the expected one: Spool in front of it must stream exactly that
// text with the same token counts, and stop the upstream's decoding when a job is cancelled.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, waitUntil, streamUrl, metricValue, sleep } from './lib/http.mjs';
import { openSSE, readSSE, textOf } from './lib/sse.mjs';
import { makeTinyModel, startLlamaServer, llamaServerMissing } from './lib/llama.mjs';

const SLOT_CTX = 16384;  // llama-server: -c 32768 over -np 2
let dir;
let upstream;  // llama-server
let srv;       // Spool
let c;

before(async () => {
  if (llamaServerMissing) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-llama-server-e2e-'));
  const model = makeTinyModel(path.join(dir, 'tiny.gguf'), { ctx: 2 * SLOT_CTX });
  upstream = await startLlamaServer(model, ['-np', '2', '-c', String(2 * SLOT_CTX), '-t', '1', '--metrics']);
  const config = path.join(dir, 'spool.toml');
  fs.writeFileSync(config, [
    '[[models]]', 'name = "via-openai"', 'engine = "openai"', `target = "${upstream.url}/v1"`, 'upstream_model = "tiny"', '',
    '[[models]]', 'name = "via-anthropic"', 'engine = "anthropic"', `target = "${upstream.url}"`, 'upstream_model = "tiny"', '',
    '[[models]]', 'name = "local"', 'engine = "llama"', `target = "${model}"`, 'context = 1024', 'threads = 1', '',
  ].join('\n'));
  srv = await startServer(['--config', config]);
  c = client(srv.url);
});
after(async () => {
  if (srv) await srv.stop();
  if (upstream) await upstream.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const opts = { skip: llamaServerMissing };
let seq = 0;
const nextId = (tag) => `ls-${tag}-${process.pid}-${++seq}`;
const GREEDY = { temperature: 0 };
const MESSAGES = [
  { role: 'user', content: 'Name three rivers.' },
  { role: 'assistant', content: 'The Nile, the Amazon and' },
  { role: 'user', content: 'and the third?' },
];

/** llama-server's own non-streamed answer. */
async function direct(route, body) {
  const res = await fetch(`${upstream.url}${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}
const directOpenAi = (max_tokens, extra = {}) =>
  direct('/v1/chat/completions', { model: 'tiny', messages: MESSAGES, max_tokens, ...GREEDY, ...extra });
const directAnthropic = (max_tokens, extra = {}) =>
  direct('/v1/messages', { model: 'tiny', messages: MESSAGES, max_tokens, ...GREEDY, ...extra });

/** Runs a Spool job to its end; returns its text, final message_delta and status. */
async function runJob(model, max_tokens, extra = {}) {
  const id = nextId(model);
  const res = await c.start({ model, max_tokens, messages: MESSAGES, ...GREEDY, ...extra }, id);
  assert.equal(res.status, 200, res.text);
  const r = await readSSE(streamUrl(srv.url, id));
  const events = r.stored.map((e) => e.json);
  assert.equal(events[0].type, 'message_start');
  assert.equal(events.at(-1).type, 'message_stop', JSON.stringify(events.at(-1)));
  const status = (await c.status(id)).json;
  return { id, text: textOf(r.events), start: events[0], delta: events.at(-2), status };
}

const upstreamMetric = async (name) => metricValue(await (await fetch(`${upstream.url}/metrics`)).text(), name);
const busySlots = async () => (await (await fetch(`${upstream.url}/slots`)).json()).filter((s) => s.is_processing).length;

test('openai engine: the same text and token counts as llama-server answers directly', opts, async () => {
  const want = await directOpenAi(24);
  const got = await runJob('via-openai', 24);
  assert.ok(want.choices[0].message.content.length > 0);
  assert.equal(got.text, want.choices[0].message.content);
  // OpenAI-compatible servers count the prompt only in their last chunk: message_delta carries it
  assert.equal(got.delta.usage.input_tokens, want.usage.prompt_tokens);
  assert.equal(got.delta.usage.output_tokens, want.usage.completion_tokens);
  assert.equal(got.delta.delta.stop_reason, want.choices[0].finish_reason === 'length' ? 'max_tokens' : 'end_turn');
  assert.equal(got.status.status, 'completed');
  assert.deepEqual(got.status.metadata.usage, got.delta.usage);
});

test('anthropic engine: the same text and token counts as llama-server answers directly', opts, async () => {
  const want = await directAnthropic(24);
  const got = await runJob('via-anthropic', 24);
  assert.equal(got.text, want.content.map((b) => b.text ?? '').join(''));
  // llama-server reports a reused prompt prefix as cache_read_input_tokens; Spool counts the whole prompt
  const prompt = want.usage.input_tokens + (want.usage.cache_read_input_tokens ?? 0);
  assert.equal(got.start.message.usage.input_tokens, prompt);
  assert.equal(got.delta.usage.input_tokens, prompt);
  assert.equal(got.delta.usage.output_tokens, want.usage.output_tokens);
  assert.equal(got.delta.delta.stop_reason, want.stop_reason);
  assert.equal(got.status.status, 'completed');
});

test('the in-process llama engine renders the chat template as llama-server does', opts, async () => {
  const system = 'You answer briefly.';
  const want = await direct('/v1/chat/completions',
    { model: 'tiny', messages: [{ role: 'system', content: system }, ...MESSAGES], max_tokens: 1 });
  let counted;
  await waitUntil(async () => {  // 529 while the model is still loading
    counted = await c.post('/v1/messages/count_tokens', { model: 'local', system, messages: MESSAGES });
    return counted.status !== 529;
  }, { timeoutMs: 20_000, what: 'the local model to load' });
  assert.equal(counted.status, 200, counted.text);
  assert.equal(counted.json.input_tokens, want.usage.prompt_tokens);
});

test('the in-process llama engine decodes greedily exactly as llama-server does', opts, async () => {
  // same GGUF, same llama.cpp build: same prompt tokens, same logits, same argmax, same text
  const want = await directOpenAi(40);
  const got = await runJob('local', 40);
  assert.equal(got.text, want.choices[0].message.content);
  assert.equal(got.delta.usage.input_tokens, want.usage.prompt_tokens);
  assert.equal(got.delta.usage.output_tokens, want.usage.completion_tokens);
});

test('stop sequences: applied by Spool for openai, passed upstream for anthropic', opts, async () => {
  const full = (await directOpenAi(24)).choices[0].message.content;
  // a stop string that first occurs well inside the reply
  const at = Math.floor(full.length / 2);
  const stop = full.slice(at, at + 4);
  const cut = full.slice(0, full.indexOf(stop));
  assert.ok(cut.length > 0 && stop.trim().length > 0, `usable stop in ${JSON.stringify(full)}`);

  const o = await runJob('via-openai', 24, { stop_sequences: [stop] });
  assert.equal(o.text, cut);
  assert.equal(o.delta.delta.stop_reason, 'stop_sequence');
  assert.equal(o.delta.delta.stop_sequence, stop);

  const a = await runJob('via-anthropic', 24, { stop_sequences: [stop] });
  assert.equal(a.text, cut);
  assert.equal(a.delta.delta.stop_reason, 'stop_sequence');
  assert.equal(a.delta.delta.stop_sequence, stop);
});

test('parallel jobs through both engines all complete with full replies', opts, async () => {
  const runs = await Promise.all(['via-openai', 'via-anthropic', 'via-openai', 'via-anthropic', 'via-openai']
    .map((m) => runJob(m, 40, { temperature: 1, seed: 7 })));
  for (const r of runs) {
    assert.equal(r.status.status, 'completed');
    assert.ok(r.text.length > 0);
    assert.ok(r.delta.usage.output_tokens >= 1 && r.delta.usage.output_tokens <= 40);
  }
});

for (const model of ['via-openai', 'via-anthropic']) {
  test(`${model}: cancel closes the upstream request and llama-server stops decoding`, opts, async () => {
    const max = 12_000;  // seconds of decoding at llama-server's speed on this model
    const before = await upstreamMetric('llamacpp:tokens_predicted_total');
    const id = nextId('cancel');
    assert.equal((await c.start(chat('go on forever', { model, max_tokens: max }), id)).status, 200);
    const sse = openSSE(streamUrl(srv.url, id), { timeoutMs: 30_000 });
    await sse.waitFor((e) => e.event === 'content_block_delta', 10_000);
    assert.equal(await busySlots(), 1, 'llama-server is decoding the job');
    const res = await c.cancel(id);
    assert.equal(res.status, 200, res.text);
    assert.equal((await waitStatus(c, id)).status, 'cancelled');
    await sse.done;
    await waitUntil(async () => (await busySlots()) === 0, { timeoutMs: 10_000, what: 'llama-server slot released' });
    await sleep(100);  // llama-server updates its counters after releasing the slot
    const decoded = (await upstreamMetric('llamacpp:tokens_predicted_total')) - before;
    assert.ok(decoded < max / 2, `llama-server decoded ${decoded} of ${max} tokens after the cancel`);
  });
}

for (const model of ['via-openai', 'via-anthropic']) {
  test(`${model}: llama-server's own 400 (prompt beyond its context) ends the job with its message`, opts, async () => {
    const id = nextId('ctx');
    const res = await c.start(chat('word '.repeat(SLOT_CTX + 500), { model, max_tokens: 4 }), id);
    assert.equal(res.status, 200, res.text);
    const s = await waitStatus(c, id);
    assert.equal(s.status, 'error');
    const r = await readSSE(streamUrl(srv.url, id));
    const last = r.stored.at(-1).json;
    assert.equal(last.type, 'error');
    for (const text of [last.detail, s.error_message]) {
      assert.match(text, /HTTP 400/);
      assert.match(text, /exceeds the available context size/);
    }
  });
}
