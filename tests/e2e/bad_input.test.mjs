// §2 request validation and §5 error bodies: every bad input is rejected with the right status
// and body, creates nothing, and leaves the server working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, memoryOf, isSanitized } from './lib/harness.mjs';
import {
  client, chat, waitStatus, streamUrl, assertErrorBody, assertSchemaError, request, ASYNC, rawConnect, sleep,
} from './lib/http.mjs';
import { readSSE, textOf } from './lib/sse.mjs';

const MAX_BODY = 65536;
let srv;
let c;
let reference; // {id, body}: a completed stream that no bad input may change
before(async () => {
  srv = await startServer([
    '--mock-token-delay-ms', '1', '--model', 'echo=mock:', '--model', 'second=mock:', '--max-body-bytes', String(MAX_BODY),
  ]);
  c = client(srv.url);
  const id = `reference-${process.pid}`;
  assert.equal((await c.start(chat('reference stream text'), id)).status, 200);
  await waitStatus(c, id, 'completed');
  reference = { id, body: (await readSSE(streamUrl(srv.url, id))).body };
});
after(async () => {
  // Malformed input never changes any stored stream.
  const now = await readSSE(streamUrl(srv.url, reference.id));
  assert.ok(now.body.equals(reference.body), 'the reference stream changed');
  await srv.stop();
});

let seq = 0;
const newId = (p = 'bad') => `${p}-${process.pid}-${++seq}`;

/** After a rejected start with `id`: nothing was created and a valid request still works. */
async function assertNothingCreatedAndAlive(id) {
  const s = await c.status(id);
  assert.equal(s.status, 404, `a rejected request created stream ${id}: ${s.text}`);
  const ok = newId('ok');
  const r = await c.start(chat('still alive'), ok);
  assert.equal(r.status, 200, `a valid request after the bad one failed: ${r.text}`);
  assert.equal(r.json.message_id, ok);
}

async function startRaw(id, body, headers = { 'Content-Type': 'application/json' }) {
  return c.request('POST', `${ASYNC}?message_id=${id}`, { body, headers });
}

const U = (content = 'hello') => [{ role: 'user', content }];

// ---------------------------------------------------------------------------------------------
// Wrong JSON types for every field of §2: schema failures with a detail list naming the field.
const typeCases = [
  ['model', { model: 123, messages: U() }],
  ['model', { model: true, messages: U() }],
  ['model', { model: ['default'], messages: U() }],
  ['messages', { model: 'default' }],
  ['messages', { messages: 'hello' }],
  ['messages', { messages: { role: 'user', content: 'x' } }],
  ['messages', { messages: [5] }],
  ['messages', { messages: ['hello'] }],
  ['messages', { messages: [{ role: 5, content: 'x' }] }],
  ['messages', { messages: [{ role: 'robot', content: 'x' }] }],
  ['messages', { messages: [{ content: 'x' }] }],
  ['messages', { messages: [{ role: 'user' }] }],
  ['messages', { messages: [{ role: 'user', content: 5 }] }],
  ['messages', { messages: [{ role: 'user', content: { type: 'text', text: 'x' } }] }],
  ['messages', { messages: [{ role: 'user', content: [{ type: 'text', text: 5 }] }] }],
  ['messages', { messages: [{ role: 'user', content: [{ type: 'text' }] }] }],
  ['messages', { messages: [{ role: 'user', content: [{ type: 'no_such_block', text: 'x' }] }] }],
  ['messages', { messages: [{ role: 'user', content: [{ text: 'x' }] }] }],
  ['max_tokens', { messages: U(), max_tokens: '100' }],
  ['max_tokens', { messages: U(), max_tokens: 1.5 }],
  ['max_tokens', { messages: U(), max_tokens: true }],
  ['system', { messages: U(), system: 5 }],
  ['system', { messages: U(), system: true }],
  ['system', { messages: U(), system: [5] }],
  ['system', { messages: U(), system: { type: 'text' } }],
  ['stream', { messages: U(), stream: 'yes' }],
  ['stream', { messages: U(), stream: 1 }],
  ['temperature', { messages: U(), temperature: '0.5' }],
  ['temperature', { messages: U(), temperature: true }],
  ['top_p', { messages: U(), top_p: 'high' }],
  ['top_k', { messages: U(), top_k: 1.5 }],
  ['top_k', { messages: U(), top_k: '3' }],
  ['stop_sequences', { messages: U(), stop_sequences: 'STOP' }],
  ['stop_sequences', { messages: U(), stop_sequences: [1, 2] }],
  ['stop_sequences', { messages: U(), stop_sequences: { a: 'b' } }],
  ['tools', { messages: U(), tools: { name: 'a' } }],
  ['tools', { messages: U(), tools: 'a' }],
  ['tools', { messages: U(), tools: [5] }],
  ['tools', { messages: U(), tools: [{ description: 'no name' }] }],
  ['tools', { messages: U(), tools: [{ name: 5 }] }],
  ['tool_choice', { messages: U(), tool_choice: 'auto' }],
  ['tool_choice', { messages: U(), tool_choice: 5 }],
  ['tool_choice', { messages: U(), tool_choice: { type: 'bogus' } }],
  ['tool_choice', { messages: U(), tool_choice: { type: 5 } }],
  ['thinking', { messages: U(), thinking: 'yes' }],
  ['thinking', { messages: U(), thinking: 5 }],
  ['thinking', { messages: U(), thinking: { enabled: 'yes' } }],
  ['metadata', { messages: U(), metadata: 'x' }],
  ['metadata', { messages: U(), metadata: 5 }],
  ['metadata', { messages: U(), metadata: ['a'] }],
  ['metadata', { messages: U(), metadata: { user_id: 5 } }],
  ['min_p', { messages: U(), min_p: 'x' }],
  ['seed', { messages: U(), seed: 'x' }],
];

for (const [field, body] of typeCases) {
  test(`schema failure: ${field} = ${JSON.stringify(body[field] ?? '(missing)').slice(0, 60)} ${field === 'messages' ? JSON.stringify(body.messages ?? null).slice(0, 50) : ''}`, async () => {
    const id = newId('type');
    const r = await c.start(body, id);
    assertSchemaError(assert, r, field);
    await assertNothingCreatedAndAlive(id);
  });
}

// ---------------------------------------------------------------------------------------------
// §2 rules: each a 400 with the §5 body.
const TU = (id, name = 'calc') => ({ type: 'tool_use', id, name, input: {} });
const TR = (id) => ({ type: 'tool_result', tool_use_id: id, content: 'result' });
const ruleCases = [
  ['empty messages', { messages: [] }],
  ['empty string content', { messages: U('') }],
  ['empty block list content', { messages: [{ role: 'user', content: [] }] }],
  ['last message role system', { messages: [{ role: 'user', content: 'x' }, { role: 'system', content: 'sys' }] }],
  ['only a system message', { messages: [{ role: 'system', content: 'sys' }] }],
  ['duplicate tool names', { messages: U(), tools: [{ name: 'dup' }, { name: 'dup' }] }],
  ['tool_use in a user message', { messages: [{ role: 'user', content: [TU('t1')] }] }],
  ['duplicate tool_use ids', {
    messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [TU('t1'), TU('t1')] },
      { role: 'user', content: [TR('t1')] },
    ],
  }],
  ['tool_result without earlier tool_use', { messages: [{ role: 'user', content: [TR('t9')] }] }],
  ['tool_result ids differ from tool_use ids (missing one)', {
    messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [TU('a1'), TU('b2')] },
      { role: 'user', content: [TR('a1')] },
    ],
  }],
  ['tool_result ids differ from tool_use ids (unknown one)', {
    messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [TU('a1')] },
      { role: 'user', content: [TR('a1'), TR('zz')] },
    ],
  }],
  ['a trailing assistant tool_use no tool_result answers', {
    messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [{ type: 'text', text: 'calling' }, TU('t1')] },
    ],
  }],
  ['tool_use id not matching [A-Za-z0-9_-]+', {
    messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [TU('bad id!')] },
      { role: 'user', content: [TR('bad id!')] },
    ],
  }],
  ['tool_choice tool naming an unknown tool', { messages: U(), tools: [{ name: 'a' }], tool_choice: { type: 'tool', name: 'b' } }],
  ['tool_choice tool without name', { messages: U(), tools: [{ name: 'a' }], tool_choice: { type: 'tool' } }],
  ['tool_choice tool without tools', { messages: U(), tool_choice: { type: 'tool', name: 'a' } }],
  ['temperature 1.5', { messages: U(), temperature: 1.5 }],
  ['temperature -0.1', { messages: U(), temperature: -0.1 }],
  ['top_p -0.1', { messages: U(), top_p: -0.1 }],
  ['top_p 1.01', { messages: U(), top_p: 1.01 }],
  ['top_k -1', { messages: U(), top_k: -1 }],
  ['metadata.user_id of 513 chars', { messages: U(), metadata: { user_id: 'u'.repeat(513) } }],
];

for (const [name, body] of ruleCases) {
  test(`rule: ${name} → 400`, async () => {
    const id = newId('rule');
    const r = await c.start(body, id);
    assertErrorBody(assert, r, 400, 'invalid_request_error');
    await assertNothingCreatedAndAlive(id);
    // The same body on the synchronous route and validate is rejected too.
    const s = await c.post('/v1/messages', body);
    assert.equal(s.status, 400, `POST /v1/messages: ${s.text}`);
    const v = await c.post('/v1/messages/validate', body);
    assert.equal(v.status, 400, `validate: ${v.text}`);
    assert.equal(v.json.valid ?? false, false);
  });
}

test('unknown model name → 400 naming the available models', async () => {
  const id = newId('model');
  const r = await c.start({ model: 'gpt-4o', messages: U() }, id);
  const b = assertErrorBody(assert, r, 400, 'invalid_request_error');
  const text = JSON.stringify(b.detail);
  assert.ok(text.includes('echo') && text.includes('second'), `explanation must name the models: ${text}`);
  await assertNothingCreatedAndAlive(id);
});

test('"default", claude-3-haiku and other claude-* names map to the default model', async () => {
  for (const model of ['default', 'claude-3-haiku', 'claude-3-haiku-20240307', 'claude-opus-4-1']) {
    const id = newId('alias');
    const r = await c.start({ model, messages: U('alias check') }, id);
    assert.equal(r.status, 200, `${model}: ${r.text}`);
    const s = await waitStatus(c, id, 'completed');
    assert.equal(s.metadata.model, 'echo', model);
  }
});

// ---------------------------------------------------------------------------------------------
// Accepted input: null means absent, unknown fields are ignored, boundaries.
test('null for every optional field means absent', async () => {
  const id = newId('nulls');
  const body = {
    model: null, max_tokens: null, system: null, stream: null, temperature: null, top_p: null, top_k: null,
    min_p: null, repetition_penalty: null, presence_penalty: null, frequency_penalty: null, seed: null,
    stop_sequences: null, tools: null, tool_choice: null, thinking: null, metadata: null,
    messages: U('nulls are fine'),
  };
  const r = await c.start(body, id);
  assert.equal(r.status, 200, r.text);
  const s = await waitStatus(c, id, 'completed');
  assert.equal(s.metadata.model, 'echo');
  assert.equal(s.metadata.thinking_enabled, false);
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal(textOf(log.events), 'nulls are fine');
  const v = await c.post('/v1/messages/validate', body);
  assert.deepEqual(v.json, { valid: true, errors: null });
});

test('unknown fields are ignored at the top level, in messages and in content blocks', async () => {
  const id = newId('unknown');
  const body = {
    model: 'default',
    anthropic_beta: ['x'],
    some_future_field: { nested: [1, 2] },
    messages: [{
      role: 'user',
      name: 'ignored',
      content: [{ type: 'text', text: 'cache me', cache_control: { type: 'ephemeral' }, citations: null, extra: 1 }],
    }],
    system: [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral' } }],
    tools: [{ name: 't', description: 'd', input_schema: { type: 'object' }, cache_control: { type: 'ephemeral' }, type: 'custom' }],
    metadata: { user_id: 'u'.repeat(512), other_key: 'kept' },
  };
  const r = await c.start(body, id);
  assert.equal(r.status, 200, r.text);
  await waitStatus(c, id, 'completed');
  assert.equal(textOf((await readSSE(streamUrl(srv.url, id))).events), 'cache me');
});

test('negative min_p / penalties / seed are ignored; boundary values are accepted', async () => {
  const id = newId('bounds');
  const r = await c.start({
    messages: U('edge values'), temperature: 0, top_p: 1, top_k: 0,
    min_p: -1, repetition_penalty: -2, presence_penalty: -0.5, frequency_penalty: -3, seed: -7,
  }, id);
  assert.equal(r.status, 200, r.text);
  const r2 = await c.start({ messages: U('edge values'), temperature: 1, top_p: 0 }, newId('bounds'));
  assert.equal(r2.status, 200, r2.text);
  await waitStatus(c, id, 'completed');
});

test('a valid tool conversation and other block types are accepted', async () => {
  const id = newId('tools');
  const r = await c.start({
    tools: [{ name: 'calc', input_schema: { type: 'object' } }],
    messages: [
      { role: 'user', content: 'add numbers' },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'hmm', signature: 'sig' },
          { type: 'redacted_thinking', data: 'xyz' },
          { type: 'text', text: 'calling' },
          TU('call_1-A'), TU('call_2', 'calc'),
        ],
      },
      {
        role: 'user',
        content: [
          TR('call_1-A'),
          { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: '42' }], is_error: false },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.invalid/a.png' } },
          { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'doc' } },
          { type: 'text', text: 'final words' },
        ],
      },
    ],
  }, id);
  assert.equal(r.status, 200, r.text);
  const s = await waitStatus(c, id);
  assert.ok(['completed', 'error'].includes(s.status));
  const log = await readSSE(streamUrl(srv.url, id));
  const last = log.stored.at(-1).event;
  assert.ok(last === 'message_stop' || last === 'error', `log must end properly, ended with ${last}`);
});

// ---------------------------------------------------------------------------------------------
// Broken bodies and headers.
const malformed = [
  ['truncated JSON', '{"messages": [{"role": "user", "content": "hi"'],
  ['not JSON at all', 'hello there'],
  ['empty body', ''],
  ['JSON null', 'null'],
  ['JSON array', '[{"role":"user","content":"x"}]'],
  ['JSON string', '"messages"'],
  ['trailing garbage', '{"messages":[{"role":"user","content":"x"}]} trailing'],
  ['single quotes', "{'messages': []}"],
  ['trailing comma', '{"messages":[{"role":"user","content":"x"},]}'],
  ['deeply nested', '['.repeat(30000) + ']'.repeat(10)],
];
for (const [name, body] of malformed) {
  test(`malformed body (${name}) → 400`, async () => {
    const id = newId('malformed');
    const r = await startRaw(id, body);
    assertErrorBody(assert, r, 400, 'invalid_request_error');
    await assertNothingCreatedAndAlive(id);
  });
}

const badUtf8 = [
  ['0xff 0xfe', Buffer.from([0xff, 0xfe])],
  ['overlong "/"', Buffer.from([0xc0, 0xaf])],
  ['UTF-8 encoded surrogate', Buffer.from([0xed, 0xa0, 0x80])],
  ['truncated sequence', Buffer.from([0xe2, 0x82])],
];
for (const [name, bytes] of badUtf8) {
  test(`invalid UTF-8 in the body (${name}) → 400`, async () => {
    const id = newId('utf8');
    const body = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"ab'), bytes, Buffer.from('cd"}]}')]);
    const r = await startRaw(id, body);
    assertErrorBody(assert, r, 400, 'invalid_request_error');
    await assertNothingCreatedAndAlive(id);
  });
}

for (const [name, headers] of [
  ['missing Content-Type', {}],
  ['text/plain', { 'Content-Type': 'text/plain' }],
  ['form encoded', { 'Content-Type': 'application/x-www-form-urlencoded' }],
  ['application/jsonx', { 'Content-Type': 'application/jsonx' }],
]) {
  test(`wrong Content-Type (${name}) → 400`, async () => {
    const id = newId('ctype');
    const r = await startRaw(id, JSON.stringify(chat('valid json')), headers);
    assertErrorBody(assert, r, 400, 'invalid_request_error');
    await assertNothingCreatedAndAlive(id);
  });
}

test('Content-Type application/json; charset=utf-8 is accepted', async () => {
  const id = newId('charset');
  const r = await startRaw(id, JSON.stringify(chat('charset ok')), { 'Content-Type': 'application/json; charset=utf-8' });
  assert.equal(r.status, 200, r.text);
});

test('body over --max-body-bytes → 413 request_too_large; exactly at the limit is accepted', async () => {
  const id = newId('big');
  const pad = (n) => {
    const base = JSON.stringify(chat('big'));
    const extra = n - base.length - ',"pad":""'.length;
    return base.slice(0, -1) + `,"pad":"${'x'.repeat(extra)}"}`;
  };
  const tooBig = pad(MAX_BODY + 1);
  assert.equal(Buffer.byteLength(tooBig), MAX_BODY + 1);
  const r = await startRaw(id, tooBig);
  assertErrorBody(assert, r, 413, 'request_too_large');
  await assertNothingCreatedAndAlive(id);
  const huge = await startRaw(newId('big'), pad(MAX_BODY * 4));
  assertErrorBody(assert, huge, 413, 'request_too_large');
  const exact = pad(MAX_BODY);
  assert.equal(Buffer.byteLength(exact), MAX_BODY);
  const ok = await startRaw(newId('big-ok'), exact);
  assert.equal(ok.status, 200, ok.text);
  // Also on the synchronous route.
  const s = await c.request('POST', '/v1/messages', { body: tooBig, headers: { 'Content-Type': 'application/json' } });
  assertErrorBody(assert, s, 413, 'request_too_large');
  await assertNothingCreatedAndAlive(newId('big-after'));
});

for (const [what, useFetch] of [['a raw client', false], ['fetch', true]]) {
  test(`${what} sending an oversized body without Expect reads the 413, not a reset`, async () => {
    const total = MAX_BODY * 64; // 4 MiB announced and sent whole, as fetch does
    if (useFetch) {
      const r = await fetch(`${srv.url}/v1/messages/async`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: 'x'.repeat(total),
        signal: AbortSignal.timeout(20_000),
      });
      assert.equal(r.status, 413);
      assert.equal((await r.json()).error.type, 'request_too_large');
      return;
    }
    const sock = await rawConnect(srv.url);
    let answer = '';
    let failure = null;
    sock.on('data', (d) => { answer += d.toString('latin1'); });
    sock.on('error', (e) => { failure = e; });
    const closed = new Promise((resolve) => sock.on('close', resolve));
    sock.write(`POST /v1/messages/async HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 0; sent < total && !failure; sent += chunk.length) {
      // a socket the server closed never drains: the close ends the wait too
      if (!sock.write(chunk)) await Promise.race([new Promise((resolve) => sock.once('drain', resolve)), closed]);
    }
    sock.end();
    await Promise.race([closed, sleep(20_000).then(() => { throw new Error('the server did not close within 20 s'); })]);
    assert.equal(failure, null, `writing the body failed: ${failure}`);
    assert.match(answer, /^HTTP\/1\.1 413 /, answer.slice(0, 200));
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error.type, 'request_too_large');
  });
}

test('a bad body aimed at an existing id changes nothing', async () => {
  const r1 = await startRaw(reference.id, '{"messages": [');
  assert.equal(r1.status, 400);
  const r2 = await c.start({ messages: [] }, reference.id);
  assert.equal(r2.status, 400);
  const now = await readSSE(streamUrl(srv.url, reference.id));
  assert.ok(now.body.equals(reference.body));
  assert.equal((await c.status(reference.id)).json.status, 'completed');
});

// ---------------------------------------------------------------------------------------------
// Routing.
for (const [method, path] of [
  ['POST', '/'],  // GET / is the playground (web.test.mjs)
  ['GET', '/index.htm'],
  ['GET', '/v1/nope'],
  ['POST', '/v1/messages/async/some-id/bogus'],
  ['GET', '/v1/messages/async/some-id'],
  ['GET', '/v1/messages/async/some-id/stream/extra'],
  ['POST', '/v2/messages'],
]) {
  test(`unknown route ${method} ${path} → 404 {"detail":"Not Found"}`, async () => {
    const r = await c.request(method, path, method === 'POST' ? { json: chat('x') } : {});
    assert.equal(r.status, 404, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(r.json, { detail: 'Not Found' });
  });
}

for (const [method, path] of [
  ['GET', '/v1/messages'],
  ['PUT', '/v1/messages/async'],
  ['DELETE', '/v1/messages/async'],
  ['DELETE', '/v1/messages/async/some-id/status'],
  ['POST', '/v1/messages/async/some-id/stream'],
  ['GET', '/v1/messages/async/some-id/cancel'],
  ['POST', '/v1/messages/async/some-id/delete'],
  ['GET', '/v1/messages/count_tokens'],
  ['GET', '/v1/messages/validate'],
]) {
  test(`wrong method ${method} ${path} → 405 {"detail":"Method Not Allowed"}`, async () => {
    const r = await c.request(method, path);
    assert.equal(r.status, 405, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(r.json, { detail: 'Method Not Allowed' });
  });
}

test('the server survives a burst of garbage on one connection each and still answers', async () => {
  const garbage = ['GARBAGE\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'POST /v1/messages HTTP/1.1\r\nContent-Length: -5\r\n\r\n',
    'POST /v1/messages HTTP/1.1\r\nContent-Length: abc\r\n\r\n', '\x00\x01\x02\x03\r\n\r\n'];
  const net = await import('node:net');
  for (const g of garbage) {
    await new Promise((resolve) => {
      const s = net.connect({ host: srv.host, port: srv.port }, () => s.end(g));
      const timer = setTimeout(() => { s.destroy(); resolve(); }, 2000);
      s.on('data', () => {});
      s.on('close', () => { clearTimeout(timer); resolve(); });
      s.on('error', () => {});
    });
  }
  const h = await request(srv.url, 'GET', '/health');
  assert.equal(h.status, 200);
  await assertNothingCreatedAndAlive(newId('after-garbage'));
});

test('a 2 MB body of a million bad messages: 400 with at most 51 issues, promptly, in bounded memory', async () => {
  const big = await startServer(['--max-body-bytes', String(16 * 1024 * 1024)]);
  try {
    const n = 1_000_000;
    const body = `{"messages":[${Array(n).fill('1').join(',')}]}`;
    const t0 = performance.now();
    const r = await request(big.url, 'POST', ASYNC, {
      body, headers: { 'Content-Type': 'application/json' }, timeoutMs: 10_000,
    });
    const ms = performance.now() - t0;
    const b = assertSchemaError(assert, r, 'messages');
    assert.ok(ms < 5000, `answered after ${Math.round(ms)} ms`);
    assert.equal(b.detail.length, 51);
    assert.deepEqual(b.detail[0].loc, ['body', 'messages', 0]);
    assert.equal(b.detail[50].msg, `and ${n - 50} more`);
    assert.equal(b.error.message, `Invalid Request Error: body.messages.0: Input should be a valid dictionary (and ${n - 1} more)`);
    assert.ok(r.raw.length < 20_000, `error body of ${r.raw.length} bytes`);
    const mem = memoryOf(big.proc.pid);
    if (mem && !isSanitized()) assert.ok(mem.peakMb < 200, `server memory peaked at ${mem.peakMb.toFixed(0)} MB`);
  } finally {
    await big.stop();
  }
});
