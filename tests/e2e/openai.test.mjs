// The `openai` engine against a scripted OpenAI-compatible upstream on loopback: translation
// of text, reasoning, tool calls, usage; cancel closes the upstream request; every failure
// (HTTP error, refused, cut, malformed chunk, idle timeout) ends the job with a clear error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, waitUntil, streamUrl } from './lib/http.mjs';
import { readSSE, textOf, thinkingOf } from './lib/sse.mjs';

const KEY = 'sk-upstream-test';
const seen = [];          // request bodies and headers the upstream received
let slowClosedAt = null;  // when Spool closed the "slow" stream
let upstream;
let dir;
let srv;
let c;

const chunk = (delta, finish = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

function script(model, res, req) {
  const sse = () => res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  switch (model) {
    case 'ok':
      sse();
      res.write(chunk({ role: 'assistant', reasoning_content: 'let me see' }));
      res.write(chunk({ content: 'Hello ' }));
      res.write(chunk({ content: 'world' }, 'stop'));
      res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 2 } })}\n\n`);
      res.end('data: [DONE]\n\n');
      return;
    case 'tools':
      sse();
      res.write(chunk({ tool_calls: [{ index: 0, id: 'c1', type: 'function', function: { name: 'lookup', arguments: '' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"q":' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '"spool"}' } }] }, 'tool_calls'));
      res.end('data: [DONE]\n\n');
      return;
    case 'auth':
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'invalid api key', type: 'auth' } }));
      return;
    case 'cut':
      sse();
      res.write(chunk({ content: 'half' }));
      setTimeout(() => res.socket.destroy(), 50);
      return;
    case 'garbage':
      sse();
      res.end('data: {not json\n\n');
      return;
    case 'silent':
      sse();
      res.write(': keep quiet\n\n');
      return;  // never ends: Spool's idle timeout must fire
    case 'slow': {
      sse();
      const timer = setInterval(() => res.write(chunk({ content: 'tick ' })), 30);
      res.on('close', () => { clearInterval(timer); slowClosedAt = performance.now(); });
      return;
    }
    default:
      res.writeHead(404);
      res.end();
  }
}

before(async () => {
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const json = JSON.parse(body);
      seen.push({ url: req.url, headers: req.headers, json });
      script(json.model, res, req);
    });
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${upstream.address().port}/v1`;
  const closed = http.createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', r));
  const refusedPort = closed.address().port;
  await new Promise((r) => closed.close(r));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-openai-e2e-'));
  const models = ['ok', 'tools', 'auth', 'cut', 'garbage', 'silent', 'slow'].map((m) => [
    '[[models]]', `name = "${m}"`, 'engine = "openai"', `target = "${base}"`, `upstream_model = "${m}"`,
    'api_key_env = "SPOOL_TEST_UPSTREAM_KEY"', 'idle_timeout = 0.5', '']).flat();
  models.push('[[models]]', 'name = "refused"', 'engine = "openai"', `target = "http://127.0.0.1:${refusedPort}/v1"`, '');
  const config = path.join(dir, 'spool.toml');
  fs.writeFileSync(config, models.join('\n'));
  srv = await startServer(['--config', config], { env: { SPOOL_TEST_UPSTREAM_KEY: KEY } });
  c = client(srv.url);
});
after(async () => {
  if (srv) await srv.stop();
  upstream?.closeAllConnections?.();
  await new Promise((r) => (upstream ? upstream.close(r) : r()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function run(model, extra = {}) {
  const id = `oa-${model}-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const r = await c.start(chat('hello upstream', { model, ...extra }), id);
  assert.equal(r.status, 200, r.text);
  const log = await readSSE(streamUrl(srv.url, id), { timeoutMs: 10_000 });
  const status = (await c.status(id)).json;
  return { id, log, status, ev: log.stored.map((e) => e.json) };
}

test('text, reasoning and usage are translated; the request is a streaming chat completion', async () => {
  const { log, status, ev } = await run('ok', { max_tokens: 50, temperature: 0.2 });
  assert.equal(status.status, 'completed');
  assert.equal(thinkingOf(log.events), 'let me see');
  assert.equal(textOf(log.events), 'Hello world');
  const md = ev.at(-2);
  assert.equal(md.delta.stop_reason, 'end_turn');
  assert.deepEqual(md.usage, { input_tokens: 11, output_tokens: 2 });
  const req = seen.find((s) => s.json.model === 'ok');
  assert.equal(req.url, '/v1/chat/completions');
  assert.equal(req.headers.authorization, `Bearer ${KEY}`);
  assert.equal(req.json.stream, true);
  assert.deepEqual(req.json.stream_options, { include_usage: true });
  assert.equal(req.json.max_tokens, 50);
  assert.equal(req.json.temperature, 0.2);
  assert.deepEqual(req.json.messages, [{ role: 'user', content: 'hello upstream' }]);
});

test('tool calls become tool_use blocks with input_json_delta', async () => {
  const { ev, status } = await run('tools', { tools: [{ name: 'lookup', input_schema: { type: 'object' } }] });
  assert.equal(status.status, 'completed');
  const start = ev.find((e) => e.type === 'content_block_start');
  assert.equal(start.content_block.type, 'tool_use');
  assert.equal(start.content_block.name, 'lookup');
  const parts = ev.filter((e) => e.delta?.type === 'input_json_delta');
  assert.equal(parts.map((p) => p.delta.partial_json).join(''), '{"q":"spool"}');
  assert.deepEqual(parts.at(-1).delta.partial_json_obj, { q: 'spool' });
  assert.equal(ev.at(-2).delta.stop_reason, 'tool_use');
});

test('cancel closes the upstream request', async () => {
  const id = `oa-slow-${process.pid}`;
  slowClosedAt = null;
  await c.start(chat('go', { model: 'slow' }), id);
  await waitUntil(async () => (await c.status(id)).json.metadata.events >= 4, { timeoutMs: 5000 });
  const t0 = performance.now();
  assert.equal((await c.cancel(id)).status, 200);
  await waitUntil(() => slowClosedAt !== null, { timeoutMs: 2000, what: 'the upstream request to close' });
  assert.ok(slowClosedAt - t0 < 1000);
  assert.equal((await c.status(id)).json.status, 'cancelled');
});

for (const [model, pattern] of [
  ['auth', /HTTP 401: invalid api key/],
  ['refused', /refused/i],
  ['cut', /closed|reset|before/i],
  ['garbage', /malformed/],
  ['silent', /idle|timed out|timeout/i],
]) {
  test(`upstream failure "${model}" ends the job with an error that says what happened`, async () => {
    const { ev, status } = await run(model);
    assert.equal(status.status, 'error');
    assert.match(status.error_message, pattern);
    const last = ev.at(-1);
    assert.equal(last.type, 'error');
    assert.equal(last.error.type, 'api_error');
    assert.match(last.detail, pattern);
  });
}

test('count_tokens on an upstream model is a clear 400', async () => {
  const r = await c.post('/v1/messages/count_tokens', { model: 'ok', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(r.status, 400);
  assert.match(r.json.detail, /tokenizer/);
});
