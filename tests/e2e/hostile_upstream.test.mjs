// Hostile upstreams (issue 12, points 5-7 and 9): numbers out of range, an endless SSE line, a huge
// delta, thousands of tiny tool-argument deltas, deeply nested tool input, credentials in the URL,
// forged log fields and ill-formed UTF-8 in an upstream's error. Each job ends promptly and
// clearly, the server's memory stays bounded, and nothing the upstream sends reaches a client or a
// log line unchecked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, memoryOf, isSanitized } from './lib/harness.mjs';
import { client, chat, waitStatus, streamUrl, assertErrorBody } from './lib/http.mjs';
import { readSSE } from './lib/sse.mjs';

const MB = 1024 * 1024;
const MEMORY_LIMIT_MB = 200;
const seenUrls = new Map();  // model -> request URL the upstream received
let upstream;
let dir;
let srv;
let c;

const chunk = (delta, finish = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const toolChunk = (args, extra = {}) => chunk({ tool_calls: [{ index: 0, function: { arguments: args }, ...extra }] });
const anthropicEvent = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

// About 53 KiB of tool arguments, sent as 4,000 deltas.
const MANY_ARGS = JSON.stringify({ items: Array.from({ length: 2500 }, (_, i) => `item-${i}-abcdefghi`) });
const NESTED_ARGS = `{"a":${'['.repeat(200_000)}`;

/** Writes `piece` until the peer closes or `total` bytes went out, minding backpressure. */
function pour(res, piece, total) {
  let sent = 0;
  const more = () => {
    while (sent < total && !res.destroyed) {
      sent += piece.length;
      if (!res.write(piece)) return res.once('drain', more);
    }
    if (!res.destroyed) res.end();
    return undefined;
  };
  more();
}

/** Sends `parts` as SSE tool deltas, then finishes with tool_calls. */
function toolStream(res, args, parts) {
  res.write(chunk({ tool_calls: [{ index: 0, id: 'c1', type: 'function', function: { name: 'lookup', arguments: '' } }] }));
  let out = '';
  for (let i = 0; i < parts; i++) {
    out += toolChunk(args.slice(Math.floor((i * args.length) / parts), Math.floor(((i + 1) * args.length) / parts)));
  }
  res.write(out);
  res.write(chunk({}, 'tool_calls'));
  res.end('data: [DONE]\n\n');
}

function openai(model, res) {
  const sse = () => res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  const usage = (raw) => {
    sse();
    res.write(chunk({ content: 'hi' }, 'stop'));
    res.write(`data: {"choices":[],"usage":{"prompt_tokens":${raw},"completion_tokens":1}}\n\n`);
    res.end('data: [DONE]\n\n');
  };
  switch (model) {
    case 'usage-frac': return usage('1.5');
    case 'usage-huge': return usage('1e30');
    case 'usage-u64': return usage('18446744073709551615');
    case 'usage-inf': return usage('1e400');
    case 'tool-index':
      sse();
      res.write('data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1e10,"id":"c","type":"function",'
        + '"function":{"name":"lookup","arguments":"{}"}}]},"finish_reason":null}]}\n\n');
      res.end('data: [DONE]\n\n');
      return undefined;
    case 'long-line':  // one SSE line that never ends (256 MiB at most)
      sse();
      res.write('data: {"choices":[{"index":0,"delta":{"content":"');
      return pour(res, 'x'.repeat(MB), 256 * MB);
    case 'huge-delta':  // one well-formed chunk whose delta is 8 MiB
      sse();
      res.write(chunk({ content: 'x'.repeat(8 * MB) }, 'stop'));
      res.end('data: [DONE]\n\n');
      return undefined;
    case 'many-tool-deltas':
      sse();
      return toolStream(res, MANY_ARGS, 4000);
    case 'nested':
      sse();
      return toolStream(res, NESTED_ARGS, 2000);
    case 'credentials':
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'invalid api key' } }));
      return undefined;
    case 'forged':  // an error text that would add a field to a text log line
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'nope\u001fmessage_id\u001fforged-id\nforged line' } }));
      return undefined;
    case 'bad-utf8':
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(Buffer.from([0x6f, 0x6f, 0x70, 0x73, 0x20, 0xff, 0xfe]));  // "oops " + two stray bytes
      return undefined;
    default:
      res.writeHead(404);
      res.end();
      return undefined;
  }
}

function anthropic(model, res) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  const input = model === 'a-input-huge' ? 1e30 : 3;
  res.write(anthropicEvent('message_start', { message: { id: 'msg_up', usage: { input_tokens: input, output_tokens: 0 } } }));
  res.write(anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
  res.write(anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'hi' } }));
  res.write(anthropicEvent('content_block_stop', { index: 0 }));
  res.write(anthropicEvent('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 1.5 } }));
  res.end(anthropicEvent('message_stop', {}));
}

const OPENAI_MODELS = ['usage-frac', 'usage-huge', 'usage-u64', 'usage-inf', 'tool-index', 'long-line', 'huge-delta',
  'many-tool-deltas', 'nested', 'forged', 'bad-utf8'];
const ANTHROPIC_MODELS = ['a-output-frac', 'a-input-huge'];

before(async () => {
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const { model } = JSON.parse(body);
      seenUrls.set(model, req.url);
      if (req.url.startsWith('/v1/messages')) anthropic(model, res);
      else openai(model, res);
    });
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const port = upstream.address().port;
  const model = (name, engine, target) => ['[[models]]', `name = "${name}"`, `engine = "${engine}"`,
    `target = "${target}"`, `upstream_model = "${name}"`, 'idle_timeout = 5', ''];
  const lines = [
    ...OPENAI_MODELS.flatMap((m) => model(m, 'openai', `http://127.0.0.1:${port}/v1`)),
    ...ANTHROPIC_MODELS.flatMap((m) => model(m, 'anthropic', `http://127.0.0.1:${port}`)),
    ...model('credentials', 'openai', `http://user:s3cret-pass@127.0.0.1:${port}/v1?api-key=SECRET-KEY&x=1`),
  ];
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-hostile-e2e-'));
  fs.writeFileSync(path.join(dir, 'spool.toml'), lines.join('\n'));
  srv = await startServer(['--config', path.join(dir, 'spool.toml')]);
  c = client(srv.url);
});
after(async () => {
  if (srv) await srv.stop();
  upstream?.closeAllConnections?.();
  await new Promise((r) => (upstream ? upstream.close(r) : r()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
/** Starts a job on `model`; returns its stored events, raw stream bytes, final status and time to end. */
async function run(model, extra = {}, timeoutMs = 10_000) {
  const id = `hostile-${model}-${process.pid}-${++seq}`;
  const t0 = performance.now();
  const r = await c.start(chat('hello upstream', { model, ...extra }), id);
  assert.equal(r.status, 200, r.text);
  const status = await waitStatus(c, id, ['completed', 'cancelled', 'error'], timeoutMs);
  const ms = performance.now() - t0;
  const log = await readSSE(streamUrl(srv.url, id), { timeoutMs });
  return { id, status, ms, log, ev: log.stored.map((e) => e.json) };
}

function assertEndedWithError(job, pattern) {
  assert.equal(job.status.status, 'error', JSON.stringify(job.status));
  assert.match(job.status.error_message, pattern);
  const last = job.ev.at(-1);
  assert.equal(last.type, 'error');
  assert.equal(last.error.type, 'api_error');
  assert.match(last.detail, pattern);
  assert.match(last.error.message, /^API Error: /);
}

function assertMemoryBounded(what) {
  const mem = memoryOf(srv.proc.pid);
  if (mem && !isSanitized()) assert.ok(mem.peakMb < MEMORY_LIMIT_MB, `${what}: server memory peaked at ${mem.peakMb.toFixed(0)} MB`);
}

for (const [model, pattern] of [
  ['usage-frac', /upstream sent an invalid usage value: usage\.prompt_tokens = 1\.5/],
  ['usage-huge', /upstream sent an invalid usage value: usage\.prompt_tokens = 1E30/],
  ['usage-u64', /upstream sent an invalid usage value: usage\.prompt_tokens = 18446744073709551615/],
  ['usage-inf', /upstream sent an invalid usage value: usage\.prompt_tokens/],
  ['tool-index', /upstream sent an invalid tool call index: 1E10/],
  ['a-output-frac', /upstream sent an invalid usage value: usage\.output_tokens = 1\.5/],
  ['a-input-huge', /upstream sent an invalid usage value: message\.usage\.input_tokens = 1E30/],
]) {
  test(`a number out of range ("${model}") ends the job promptly with a clear error; /v1/messages answers too`, async () => {
    const job = await run(model, { tools: [{ name: 'lookup' }] }, 5000);
    assertEndedWithError(job, pattern);
    assert.ok(job.ms < 5000, `ended after ${Math.round(job.ms)} ms`);
    const sync = await c.post('/v1/messages', chat('hello upstream', { model }), { timeoutMs: 5000 });
    const b = assertErrorBody(assert, sync, 502, 'api_error');
    assert.match(b.detail, pattern);
  });
}

test('an SSE line that never ends fails the job at upstream_max_event_bytes; memory stays bounded', async () => {
  const job = await run('long-line', {}, 20_000);
  assertEndedWithError(job, /sent an SSE line of more than 16777216 bytes \(upstream_max_event_bytes\)/);
  assertMemoryBounded('after a 256 MiB SSE line');
});

test('a delta past upstream_max_delta_bytes fails the job and is not stored', async () => {
  const job = await run('huge-delta', {}, 20_000);
  assertEndedWithError(job, /upstream sent a text delta of 8388608 bytes, more than upstream_max_delta_bytes \(1048576\)/);
  assert.ok(job.log.body.length < 64 * 1024, `the stream holds ${job.log.body.length} bytes`);
  assertMemoryBounded('after an 8 MiB delta');
});

test('4,000 small tool-argument deltas make a stream linear in the arguments\' size', async () => {
  const job = await run('many-tool-deltas', { tools: [{ name: 'lookup' }] });
  assert.equal(job.status.status, 'completed', JSON.stringify(job.status));
  const deltas = job.ev.filter((e) => e.delta?.type === 'input_json_delta').map((e) => e.delta);
  assert.equal(deltas.length, 4000);
  assert.equal(deltas.map((d) => d.partial_json).join(''), MANY_ARGS);
  assert.deepEqual(deltas.map((d) => 'partial_json_obj' in d), deltas.map((_, i) => i === deltas.length - 1));
  assert.deepEqual(deltas.at(-1).partial_json_obj, JSON.parse(MANY_ARGS));
  // Each event has ~150 bytes of framing; the arguments appear once (was: the object so far, each time).
  const total = job.log.body.length;
  assert.ok(total < 20 * MANY_ARGS.length, `${total} bytes of SSE for ${MANY_ARGS.length} bytes of arguments`);
  if (process.env.SPOOL_E2E_REPORT) console.log(`# ${total} bytes of SSE for ${MANY_ARGS.length} bytes of arguments`);
  const sync = await c.post('/v1/messages', chat('x', { model: 'many-tool-deltas', tools: [{ name: 'lookup' }] }));
  assert.equal(sync.status, 200, sync.text.slice(0, 500));
  assert.deepEqual(sync.json.content.at(-1).input, JSON.parse(MANY_ARGS));
});

test('200 KB of nested [ in tool input ends in bounded time, left unparsed', async () => {
  const job = await run('nested', { tools: [{ name: 'lookup' }] }, 10_000);
  assert.equal(job.status.status, 'completed', JSON.stringify(job.status));
  assert.ok(job.ms < 10_000, `ended after ${Math.round(job.ms)} ms`);
  const deltas = job.ev.filter((e) => e.delta?.type === 'input_json_delta').map((e) => e.delta);
  assert.equal(deltas.map((d) => d.partial_json).join(''), NESTED_ARGS);
  assert.deepEqual(deltas.at(-1).partial_json_obj, {});
});

test('credentials in the upstream URL appear in no error or log line; the route goes before the query', async () => {
  const job = await run('credentials');
  assertEndedWithError(job, /upstream http:\/\/\*\*\*@127\.0\.0\.1:\d+\/v1 answered HTTP 401: invalid api key/);
  assert.equal(seenUrls.get('credentials'), '/v1/chat/completions?api-key=SECRET-KEY&x=1');
  const everything = JSON.stringify(job.status) + job.log.body.toString('utf8') + srv.stderr();
  assert.ok(!/s3cret-pass|SECRET-KEY/.test(everything), 'a credential leaked');
});

test('an upstream error text cannot forge a log field or line', async () => {
  const job = await run('forged');
  assertEndedWithError(job, /answered HTTP 400: nope\u001fmessage_id\u001fforged-id\nforged line/);
  const logLines = srv.stderr().split('\n').filter((l) => l.includes(job.id));
  assert.ok(logLines.length > 0, `no log line names ${job.id}:\n${srv.stderr().slice(-2000)}`);
  assert.ok(!/ message_id=forged-id/.test(srv.stderr()), srv.stderr().slice(-2000));
  assert.ok(!/^forged line/m.test(srv.stderr()), srv.stderr().slice(-2000));
});

test('ill-formed UTF-8 from an upstream is replaced before it reaches JSON', async () => {
  const job = await run('bad-utf8');
  assertEndedWithError(job, /answered HTTP 500: oops \uFFFD\uFFFD/);
  const raw = (await c.status(job.id)).raw;
  assert.ok(raw.equals(Buffer.from(raw.toString('utf8'), 'utf8')), 'the status is not valid UTF-8');
  const stream = job.log.body;
  assert.ok(stream.equals(Buffer.from(stream.toString('utf8'), 'utf8')), 'the stream is not valid UTF-8');
});
