// The `anthropic` engine: Spool in front of an Anthropic-Messages-compatible upstream. The
// happy path uses a second real Spool (mock engine) as the upstream; failures use a scripted one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, waitUntil, streamUrl } from './lib/http.mjs';
import { readSSE, textOf, thinkingOf } from './lib/sse.mjs';

const KEY = 'sk-ant-test';
let upstreamSpool;  // a real Spool with the mock engine
let scripted;       // failure cases
let scriptedSeen = [];
let dir;
let srv;
let c;

const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

before(async () => {
  upstreamSpool = await startServer(['--mock-token-delay-ms', '5']);
  scripted = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const json = JSON.parse(body);
      scriptedSeen.push({ headers: req.headers, json });
      if (json.model === 'auth') {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(ev('message_start', { message: { id: 'msg_up', usage: { input_tokens: 5, output_tokens: 0 } } }));
      res.write(ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
      res.write(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'partial' } }));
      if (json.model === 'overloaded') {
        res.end(ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }));
      } else {
        setTimeout(() => res.socket.destroy(), 30);  // cut
      }
    });
  });
  await new Promise((r) => scripted.listen(0, '127.0.0.1', r));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-anthropic-e2e-'));
  const scriptedUrl = `http://127.0.0.1:${scripted.address().port}`;
  const config = [
    '[[models]]', 'name = "claude-proxy"', 'engine = "anthropic"', `target = "${upstreamSpool.url}"`,
    'upstream_model = "default"', 'api_key_env = "SPOOL_TEST_ANTHROPIC_KEY"', '',
    '[[models]]', 'name = "unknown-upstream-model"', 'engine = "anthropic"', `target = "${upstreamSpool.url}"`,
    'upstream_model = "no-such-model"', '',
    ...['auth', 'overloaded', 'cut'].flatMap((m) => ['[[models]]', `name = "${m}"`, 'engine = "anthropic"',
      `target = "${scriptedUrl}"`, `upstream_model = "${m}"`, '']),
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'spool.toml'), config);
  srv = await startServer(['--config', path.join(dir, 'spool.toml')], { env: { SPOOL_TEST_ANTHROPIC_KEY: KEY } });
  c = client(srv.url);
});
after(async () => {
  if (srv) await srv.stop();
  if (upstreamSpool) await upstreamSpool.stop();
  scripted?.closeAllConnections?.();
  await new Promise((r) => (scripted ? scripted.close(r) : r()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a reply from an Anthropic-compatible upstream is re-emitted in Spool\'s format', async () => {
  const id = `an-${process.pid}`;
  const prompt = 'relay these words through another spool';
  assert.equal((await c.start(chat(prompt, { model: 'claude-proxy', thinking: { enabled: true }, max_tokens: 2000 }), id)).status, 200);
  const log = await readSSE(streamUrl(srv.url, id), { timeoutMs: 10_000 });
  const events = log.stored.map((e) => e.json);
  const st = (await c.status(id)).json;
  assert.equal(st.status, 'completed', JSON.stringify(st));
  assert.equal(textOf(log.events), prompt);
  assert.equal(thinkingOf(log.events), 'Thinking about: relay these words through another');
  assert.equal(events[0].type, 'message_start');
  assert.equal(events[0].message.model, 'claude-proxy');
  assert.match(events[0].message.id, /^msg_[0-9a-f]{32}$/);
  assert.equal(events[0].message.usage.input_tokens, 6);
  const md = events.at(-2);
  assert.equal(md.delta.stop_reason, 'end_turn');
  assert.equal(md.usage.output_tokens, 6);
  assert.deepEqual(log.stored.map((e) => Number(e.id)), log.stored.map((_, i) => i + 1));
});

test('stop sequences and tool use pass through', async () => {
  const a = await c.post('/v1/messages', chat('one two three four', { model: 'claude-proxy', stop_sequences: ['three'] }));
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.stop_reason, 'stop_sequence');
  assert.equal(a.json.stop_sequence, 'three');
  const b = await c.post('/v1/messages', chat('use it', {
    model: 'claude-proxy', tools: [{ name: 'lookup', input_schema: { type: 'object' } }], tool_choice: { type: 'any' },
  }));
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.stop_reason, 'tool_use');
  assert.equal(b.json.content.at(-1).type, 'tool_use');
  assert.equal(b.json.content.at(-1).name, 'lookup');
});

for (const [model, pattern] of [
  ['auth', /HTTP 401: invalid x-api-key/],
  ['overloaded', /Overloaded/],
  ['cut', /closed|reset|before/i],
]) {
  test(`upstream failure "${model}" ends the job with a clear error`, async () => {
    const id = `an-${model}-${process.pid}`;
    await c.start(chat('x', { model }), id);
    const st = await waitStatus(c, id, 'error');
    assert.match(st.error_message, pattern);
    const log = await readSSE(streamUrl(srv.url, id));
    assert.equal(log.stored.at(-1).json.type, 'error');
  });
}

test('the upstream gets an Anthropic Messages request with the key and version headers', async () => {
  const seen = scriptedSeen.find((s) => s.json.model === 'auth');
  assert.ok(seen);
  assert.equal(seen.headers['anthropic-version'], '2023-06-01');
  assert.equal(seen.json.stream, true);
  assert.equal(seen.json.max_tokens, 1000);
  assert.deepEqual(seen.json.messages, [{ role: 'user', content: [{ type: 'text', text: 'x' }] }]);
});

test('a 400 from the upstream is relayed with the upstream\'s own explanation', async () => {
  const id = `an-relay-${process.pid}`;
  await c.start(chat('x', { model: 'unknown-upstream-model' }), id);
  const st = await waitStatus(c, id, 'error');
  // The upstream Spool's §5 body: its title and its explanation, not the title alone.
  assert.match(st.error_message, /answered HTTP 400: Invalid Request Error: .*no-such-model/);
  const log = await readSSE(streamUrl(srv.url, id));
  assert.match(log.stored.at(-1).json.error.message, /^API Error: upstream .* answered HTTP 400: Invalid Request Error: .*no-such-model/);
});
