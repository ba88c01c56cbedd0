// Structured output (issue 15 #5): output_config.format (as the AI SDK sends it for claude-*
// models), the older output_format and OpenAI's response_format. The mock answers an instance of
// the schema; the anthropic engine forwards output_config (to a second Spool whose mock follows
// it, and to a scripted upstream that records it); the openai engine sends response_format; the
// llama engine's grammar makes the tiny random model's reply fit the schema; bad schemas are 400.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from './lib/harness.mjs';
import { makeTinyModel, tinyModelMissing } from './lib/llama.mjs';
import { client, chat, waitStatus, streamUrl, assertErrorBody, assertSchemaError } from './lib/http.mjs';
import { readSSE, textOf } from './lib/sse.mjs';

// What `generateObject` with a zod object sends (after the SDK's sanitizing).
const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 0 },
    email: { type: 'string', format: 'email' },
    tags: { type: 'array', items: { type: 'string' } },
    role: { anyOf: [{ type: 'string', enum: ['admin', 'user'] }, { type: 'null' }] },
    address: { $ref: '#/$defs/address' },
  },
  required: ['name', 'age', 'email', 'tags', 'role', 'address'],
  additionalProperties: false,
  $defs: {
    address: {
      type: 'object', properties: { city: { type: 'string' }, zip: { type: 'string', minLength: 5 } },
      required: ['city', 'zip'], additionalProperties: false,
    },
  },
};
const FORMAT = { type: 'json_schema', schema: PERSON };

// A JSON Schema check for the keywords above.
function check(v, s, root = s, where = '$') {
  if (s.$ref) return check(v, root.$defs[s.$ref.split('/').at(-1)], root, where);
  if (s.anyOf) {
    assert.ok(s.anyOf.some((b) => { try { check(v, b, root, where); return true; } catch { return false; } }),
      `${where}: no anyOf branch fits ${JSON.stringify(v)}`);
    return;
  }
  if (s.enum) assert.ok(s.enum.includes(v), `${where}: ${JSON.stringify(v)} not in enum`);
  const type = Array.isArray(v) ? 'array' : v === null ? 'null' : Number.isInteger(v) && s.type === 'integer' ? 'integer' : typeof v;
  if (s.type) assert.equal(s.type === 'number' && typeof v === 'number' ? 'number' : type, s.type, `${where}: type`);
  if (s.minimum !== undefined) assert.ok(v >= s.minimum, `${where}: minimum`);
  if (s.minLength !== undefined) assert.ok(v.length >= s.minLength, `${where}: minLength`);
  if (s.format === 'email') assert.match(v, /^[^@\s]+@[^@\s]+\.[^@\s]+$/, `${where}: email`);
  if (type === 'array' && s.items) v.forEach((x, i) => check(x, s.items, root, `${where}[${i}]`));
  if (type === 'object') {
    for (const k of s.required ?? []) assert.ok(k in v, `${where}: required ${k}`);
    for (const [k, x] of Object.entries(v)) {
      if (s.properties?.[k]) check(x, s.properties[k], root, `${where}.${k}`);
      else assert.notEqual(s.additionalProperties, false, `${where}: extra property ${k}`);
    }
  }
}

let mockSrv;      // mock engine; also the upstream of the anthropic engine's "claude-proxy"
let front;        // anthropic, openai and llama engines
let recorder;     // scripted upstream: records bodies, answers fixed JSON text
const seen = [];
let dir;

function answerAnthropic(res) {
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  res.write(ev('message_start', { message: { id: 'msg_rec', usage: { input_tokens: 3, output_tokens: 0 } } }));
  res.write(ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
  res.write(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: '{"ok": true}' } }));
  res.write(ev('content_block_stop', { index: 0 }));
  res.write(ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 4 } }));
  res.end(ev('message_stop', {}));
}

function answerOpenAi(res) {
  const chunk = (delta, finish = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  res.write(chunk({ role: 'assistant', content: '{"ok": ' }));
  res.write(chunk({ content: 'true}' }, 'stop'));
  res.end('data: [DONE]\n\n');
}

before(async () => {
  mockSrv = await startServer(['--mock-token-delay-ms', '1']);
  recorder = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ url: req.url, json: JSON.parse(body) });
      if (req.url.endsWith('/chat/completions')) answerOpenAi(res); else answerAnthropic(res);
    });
  });
  await new Promise((r) => recorder.listen(0, '127.0.0.1', r));
  const rec = `http://127.0.0.1:${recorder.address().port}`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-so-e2e-'));
  const config = [
    '[[models]]', 'name = "claude-proxy"', 'engine = "anthropic"', `target = "${mockSrv.url}"`, 'upstream_model = "default"', '',
    '[[models]]', 'name = "recorded"', 'engine = "anthropic"', `target = "${rec}"`, 'upstream_model = "up-a"', '',
    '[[models]]', 'name = "oai"', 'engine = "openai"', `target = "${rec}/v1"`, 'upstream_model = "up-o"', '',
  ];
  if (!tinyModelMissing) {
    const model = makeTinyModel(path.join(dir, 'tiny.gguf'));
    config.push('[[models]]', 'name = "tiny"', 'engine = "llama"', `target = "${model}"`, 'parallel = 1', 'context = 512', 'threads = 1', '');
  }
  fs.writeFileSync(path.join(dir, 'spool.toml'), config.join('\n'));
  front = await startServer(['--config', path.join(dir, 'spool.toml')]);
});
after(async () => {
  if (front) await front.stop();
  if (mockSrv) await mockSrv.stop();
  recorder?.closeAllConnections?.();
  await new Promise((r) => (recorder ? recorder.close(r) : r()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the mock answers /v1/messages with an instance of output_config.format.schema', async () => {
  const c = client(mockSrv.url);
  const r = await c.post('/v1/messages', chat('make a person', { model: 'claude-sonnet-4-5', output_config: { format: FORMAT } }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.stop_reason, 'end_turn');
  assert.equal(r.json.content.length, 1);
  assert.equal(r.json.content[0].type, 'text');
  check(JSON.parse(r.json.content[0].text), PERSON);
});

test('an async job streams the instance as text deltas; output_format and response_format work too', async () => {
  const c = client(mockSrv.url);
  for (const extra of [{ output_format: FORMAT }, { response_format: { type: 'json_schema', json_schema: { name: 'p', schema: PERSON } } }]) {
    const id = `so-${process.pid}-${Object.keys(extra)[0]}`;
    assert.equal((await c.start(chat('a person please', extra), id)).status, 200);
    const log = await readSSE(streamUrl(mockSrv.url, id), { timeoutMs: 10_000 });
    const deltas = log.events.filter((e) => e.json?.delta?.type === 'text_delta');
    assert.ok(deltas.length > 3, 'streamed word by word');
    check(JSON.parse(textOf(log.events)), PERSON);
    assert.equal((await waitStatus(c, id)).status, 'completed');
  }
  const obj = await c.post('/v1/messages', chat('json', { response_format: { type: 'json_object' } }));
  assert.equal(obj.status, 200, obj.text);
  assert.equal(typeof JSON.parse(obj.json.content[0].text), 'object');
});

test("the AI SDK's JSON-tool fallback (non-claude model names): the mock's forced tool call fits input_schema", async () => {
  const c = client(mockSrv.url);
  const r = await c.post('/v1/messages', chat('x', {
    tools: [{ name: 'json', description: 'Respond with a JSON object.', input_schema: PERSON }], tool_choice: { type: 'any' },
  }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.stop_reason, 'tool_use');
  check(r.json.content.at(-1).input, PERSON);
});

test('the anthropic engine forwards output_config: an upstream Spool follows it', async () => {
  const c = client(front.url);
  const r = await c.post('/v1/messages', chat('make a person', { model: 'claude-proxy', output_config: { format: FORMAT } }));
  assert.equal(r.status, 200, r.text);
  check(JSON.parse(r.json.content[0].text), PERSON);
});

test('the anthropic engine sends output_config as sent, and makes one from output_format', async () => {
  const c = client(front.url);
  seen.length = 0;
  const oc = { effort: 'low', format: FORMAT };
  let r = await c.post('/v1/messages', chat('x', { model: 'recorded', output_config: oc }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(seen.at(-1).json.output_config, oc);
  r = await c.post('/v1/messages', chat('x', { model: 'recorded', output_format: FORMAT }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(seen.at(-1).json.output_config, { format: FORMAT });
  r = await c.post('/v1/messages', chat('x', { model: 'recorded' }));
  assert.equal(seen.at(-1).json.output_config, undefined);
});

test('the openai engine sends response_format json_schema', async () => {
  const c = client(front.url);
  seen.length = 0;
  const r = await c.post('/v1/messages', chat('x', { model: 'oai', output_config: { format: FORMAT } }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(JSON.parse(r.json.content[0].text), { ok: true });
  assert.deepEqual(seen.at(-1).json.response_format, { type: 'json_schema', json_schema: { name: 'response', schema: PERSON } });
  await c.post('/v1/messages', chat('x', { model: 'oai', response_format: { type: 'json_object' } }));
  assert.deepEqual(seen.at(-1).json.response_format, { type: 'json_object' });
});

const SMALL = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, color: { enum: ['red', 'green', 'blue'] }, n: { type: 'integer' }, word: { type: 'string', maxLength: 8 } },
  required: ['ok', 'color', 'n', 'word'],
  additionalProperties: false,
};

test('the llama engine: the random tiny model answers JSON valid against the schema', { skip: tinyModelMissing }, async () => {
  const c = client(front.url);
  for (const temperature of [0, 1]) {
    const r = await c.post('/v1/messages', chat('json please', { model: 'tiny', max_tokens: 300, temperature, seed: 5, output_config: { format: { type: 'json_schema', schema: SMALL } } }), { timeoutMs: 120_000 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stop_reason, 'end_turn', `the grammar ends the reply: ${r.json.content[0]?.text}`);
    const v = JSON.parse(r.json.content[0].text);
    check(v, SMALL);
    assert.ok(v.word.length <= 8);
  }
  // A schema llama.cpp cannot make a grammar of is refused at start, not answered in plain text.
  const bad = await c.start(chat('x', { model: 'tiny', output_config: { format: { type: 'json_schema', schema: { type: 'string', pattern: '^(ab$' } } } }));
  const b = assertErrorBody(assert, bad, 400, 'invalid_request_error');
  assert.match(b.error.message, /model 'tiny' \(engine llama\) cannot follow this output format: .*grammar/);
});

test('bad output formats are 400s naming the field', async () => {
  const c = client(mockSrv.url);
  const cases = [
    [{ output_config: { format: { type: 'json_schema' } } }, 'schema'],
    [{ output_config: { format: { type: 'json_schema', schema: { type: 'obj' } } } }, 'type'],
    [{ output_format: { type: 'json_schema', schema: { properties: { a: { $ref: '#/$defs/none' } } } } }, '$ref'],
    [{ response_format: { type: 'yaml' } }, 'response_format'],
    [{ output_config: { format: FORMAT }, response_format: { type: 'json_object' } }, 'response_format'],
  ];
  for (const [extra, field] of cases) {
    for (const route of ['/v1/messages', '/v1/messages/async']) {
      assertSchemaError(assert, await c.post(route, chat('x', extra)), field);
    }
  }
  let deep = { type: 'string' };
  for (let i = 0; i < 40; i++) deep = { type: 'array', items: deep };
  assertSchemaError(assert, await c.post('/v1/messages', chat('x', { output_format: { type: 'json_schema', schema: deep } })));
  // A schema with no instance the mock can make: refused at start with the reason.
  const none = await c.post('/v1/messages', chat('x', { output_format: { type: 'json_schema', schema: { type: 'array', minItems: 100000 } } }));
  const b = assertErrorBody(assert, none, 400, 'invalid_request_error');
  assert.match(b.error.message, /\(engine mock\) cannot follow this output format/);
});
