// Request ids, structured logs (text and JSON) and the W3C traceparent passed to upstream engines.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, assertErrorBody } from './lib/http.mjs';

const started = [];
after(async () => { for (const s of started) s.kill(); });
const start = async (args) => {
  const s = await startServer(args);
  started.push(s);
  return s;
};
/**
 * A stand-in OpenAI-compatible upstream for what these tests look at (the request's headers, and
 * whether it answers): it streams the reply "ok" to every request and tells `onRequest` of it.
 */
function openAiUpstream(onRequest) {
  return http.createServer((req, res) => {
    onRequest(req);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"ok"}}]}\n\n');
      res.write('data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n');
      res.end('data: [DONE]\n\n');
    });
  });
}

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('every response carries a request id: the caller\'s X-Request-Id, or a new one; errors name it too', async () => {
  const srv = await start(['--mock-token-delay-ms', '0']);
  const c = client(srv.url);
  const own = await c.start(chat('hi'), undefined, { headers: { 'X-Request-Id': 'caller-id.42' } });
  assert.equal(own.headers['request-id'], 'caller-id.42');
  const made = await c.status('missing-stream');
  assert.match(made.headers['request-id'], /^req_[0-9a-f]{32}$/);
  const bad = await c.request('POST', '/v1/messages/async', { body: 'x', headers: { 'X-Request-Id': 'bad-body' } });
  assertErrorBody(assert, bad, 400, 'invalid_request_error', { requestId: 'bad-body' });
  // an X-Request-Id that is not a plain token is replaced, not echoed
  const odd = await c.status('x', { headers: { 'X-Request-Id': 'a b<script>' } });
  assert.match(odd.headers['request-id'], /^req_/);
  await srv.stop();
});

test('JSON logs: one object per line, with the request id on the request and on its job', async () => {
  const srv = await start(['--mock-token-delay-ms', '0', '--log-format', 'json', '--log-level', 'debug']);
  const c = client(srv.url);
  const r = await c.start(chat('a "quoted" prompt\nwith a newline'), 'logged-job', {
    headers: { 'X-Request-Id': 'req-json-1', traceparent: TRACEPARENT },
  });
  assert.equal(r.status, 200);
  await waitStatus(c, 'logged-job');
  await srv.stop();
  const lines = srv.stderr().split('\n').filter(Boolean);
  assert.ok(lines.length >= 4, srv.stderr());
  const entries = lines.map((l) => {
    try { return JSON.parse(l); } catch { assert.fail(`not a JSON log line: ${l}`); }
    return null;
  });
  for (const e of entries) {
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.ok(['debug', 'info', 'warning', 'warn', 'error'].includes(e.level), e.level);
    assert.equal(typeof e.msg, 'string');
  }
  const jobStarted = entries.find((e) => e.msg === 'job started' && e.message_id === 'logged-job');
  assert.ok(jobStarted, 'job started logged');
  assert.equal(jobStarted.request_id, 'req-json-1');
  assert.equal(jobStarted.traceparent, TRACEPARENT);
  const jobEnded = entries.find((e) => e.msg === 'job ended' && e.message_id === 'logged-job');
  assert.equal(jobEnded?.request_id, 'req-json-1');
  const request = entries.find((e) => e.msg === 'request' && e.request_id === 'req-json-1');
  assert.equal(request.route, 'start');
  assert.equal(request.status, '200');
});

test('text logs: key=value fields', async () => {
  const srv = await start(['--mock-token-delay-ms', '0', '--log-level', 'info']);
  const c = client(srv.url);
  assert.equal((await c.start(chat('hi'), 'text-log', { headers: { 'X-Request-Id': 'req-text-1' } })).status, 200);
  await waitStatus(c, 'text-log');
  await srv.stop();
  assert.match(srv.stderr(), /\[info\] job started message_id=text-log request_id=req-text-1 model=mock/);
});

test('a valid traceparent reaches the upstream engine; an invalid one does not', async () => {
  const seen = [];
  const upstream = openAiUpstream((req) => {
    seen.push({ traceparent: req.headers.traceparent, tracestate: req.headers.tracestate });
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${upstream.address().port}/v1`;
    const srv = await start(['--model', `up=openai:${url}`]);
    const c = client(srv.url);
    const good = await c.start(chat('hi', { model: 'up' }), 'traced', {
      headers: { traceparent: TRACEPARENT, tracestate: 'vendor=x' },
    });
    assert.equal(good.status, 200, good.text);
    assert.equal((await waitStatus(c, 'traced')).status, 'completed');
    for (const bad of ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01', '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01']) {
      const id = `untraced-${seen.length}`;
      assert.equal((await c.start(chat('hi', { model: 'up' }), id, { headers: { traceparent: bad } })).status, 200);
      await waitStatus(c, id);
    }
    assert.deepEqual(seen[0], { traceparent: TRACEPARENT, tracestate: 'vendor=x' });
    for (const s of seen.slice(1)) assert.deepEqual(s, { traceparent: undefined, tracestate: undefined });
    assert.equal(seen.length, 5);
    await srv.stop();
  } finally {
    upstream.close();
  }
});

test('/health: ok, degraded while an engine cannot serve (with the reason), ok again once it can', async () => {
  // an upstream that is not there yet: a port nobody listens on
  const probe = http.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  probe.close();
  const srv = await start(['--model', 'echo=mock:', '--model', `up=openai:http://127.0.0.1:${port}/v1`]);
  const c = client(srv.url);
  const fresh = await c.get('/health');
  assert.equal(fresh.status, 200);
  assert.equal(fresh.json.status, 'ok');
  assert.equal(fresh.json.broker.ready, true);
  assert.equal((await c.start(chat('hi', { model: 'up' }), 'unreachable')).status, 200);
  assert.equal((await waitStatus(c, 'unreachable')).status, 'error');
  const degraded = await c.get('/health');
  assert.equal(degraded.status, 200);
  assert.equal(degraded.json.status, 'degraded');
  const up = degraded.json.engines.find((e) => e.model === 'up');
  assert.equal(up.ready, false);
  assert.equal(typeof up.reason, 'string');
  assert.equal(degraded.json.engines.find((e) => e.model === 'echo').ready, true);
  // the upstream comes up: the next request reaches it and the engine is ready again
  const upstream = openAiUpstream(() => {});
  await new Promise((r) => upstream.listen(port, '127.0.0.1', r));
  try {
    assert.equal((await c.start(chat('hi', { model: 'up' }), 'reachable')).status, 200);
    assert.equal((await waitStatus(c, 'reachable')).status, 'completed');
    assert.equal((await c.get('/health')).json.status, 'ok');
  } finally {
    upstream.close();
  }
  await srv.stop();
});
