// §6 auth: with a secret configured, the whole Authorization header must equal it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, waitStatus, streamUrl, ASYNC } from './lib/http.mjs';
import { readSSE, textOf } from './lib/sse.mjs';

const SECRET = 'Bearer sk-1';
let srv;
let open;   // no Authorization header
let authed; // correct header
let existing;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '2', '--auth-secret', SECRET]);
  open = client(srv.url);
  authed = client(srv.url, { Authorization: SECRET });
  existing = `auth-existing-${process.pid}`;
  const r = await authed.start(chat('secret words'), existing);
  assert.equal(r.status, 200, r.text);
  await waitStatus(authed, existing, 'completed');
});
after(async () => { await srv.stop(); });

const routes = () => [
  ['POST', ASYNC, chat('x')],
  ['POST', `${ASYNC}?message_id=auth-new-${process.pid}`, chat('x')],
  ['GET', `${ASYNC}/${existing}/stream`],
  ['GET', `${ASYNC}/${existing}/status`],
  ['POST', `${ASYNC}/${existing}/cancel`],
  ['DELETE', `${ASYNC}/${existing}/delete`],
  ['GET', `${ASYNC}/does-not-exist/status`],
  ['POST', '/v1/messages', chat('x')],
  ['POST', '/v1/messages', chat('x', { stream: true })],
  ['POST', '/v1/messages/count_tokens', chat('x')],
  ['POST', '/v1/messages/validate', chat('x')],
  ['GET', '/metrics'],
];

const badHeaders = [
  ['no header', {}],
  ['wrong token', { Authorization: 'Bearer sk-2' }],
  ['token without scheme', { Authorization: 'sk-1' }],
  ['scheme in other case', { Authorization: 'bearer sk-1' }],
  ['prefix of the secret', { Authorization: 'Bearer sk-' }],
  ['secret plus suffix', { Authorization: 'Bearer sk-10' }],
  ['x-api-key instead', { 'x-api-key': 'Bearer sk-1' }],
  ['empty header', { Authorization: '' }],
];

for (const [hname, headers] of badHeaders) {
  test(`${hname}: 401 {"detail":"Not authenticated"} with WWW-Authenticate on every route`, async () => {
    for (const [method, path, json] of routes()) {
      const r = await open.request(method, path, { json, headers });
      assert.equal(r.status, 401, `${method} ${path}: ${r.status} ${r.text}`);
      assert.deepEqual(r.json, { detail: 'Not authenticated' }, `${method} ${path}`);
      assert.ok(r.headers['www-authenticate'], `${method} ${path}: WWW-Authenticate header missing`);
      assert.match(String(r.headers['content-type']), /^application\/json/);
    }
    // Nothing happened to the existing stream and nothing was created.
    const s = await authed.status(existing);
    assert.equal(s.status, 200);
    assert.equal(s.json.status, 'completed');
    assert.equal((await authed.status(`auth-new-${process.pid}`)).status, 404);
  });
}

test('auth is checked before the body is parsed', async () => {
  const r = await open.request('POST', ASYNC, { body: '{"broken', headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 401, r.text);
  assert.deepEqual(r.json, { detail: 'Not authenticated' });
  const r2 = await open.request('POST', ASYNC, { body: 'x', headers: { 'Content-Type': 'text/plain', Authorization: 'Bearer nope' } });
  assert.equal(r2.status, 401, r2.text);
});

test('/health is open without auth', async () => {
  const r = await open.get('/health');
  assert.equal(r.status, 200, r.text);
});

test('with the right header every route works', async () => {
  const id = `auth-ok-${process.pid}`;
  assert.equal((await authed.start(chat('authorized text'), id)).status, 200);
  await waitStatus(authed, id, 'completed');
  const log = await readSSE(streamUrl(srv.url, id), { headers: { Authorization: SECRET } });
  assert.equal(log.status, 200);
  assert.equal(textOf(log.events), 'authorized text');
  assert.equal((await authed.get(`${ASYNC}/${id}/status`)).status, 200);
  assert.equal((await authed.cancel(id)).status, 200);
  assert.equal((await authed.post('/v1/messages', chat('sync ok'))).json.content[0].text, 'sync ok');
  assert.deepEqual((await authed.post('/v1/messages/count_tokens', chat('a b'))).json, { input_tokens: 2 });
  assert.deepEqual((await authed.post('/v1/messages/validate', chat('a b'))).json, { valid: true, errors: null });
  assert.equal((await authed.get('/metrics')).status, 200);
  assert.equal((await authed.remove(id)).status, 200);
  assert.equal((await authed.status(id)).status, 404);
});

test('the Anthropic SDK authenticates with authToken (Authorization: Bearer ...)', async () => {
  const { default: Anthropic } = await import('@anthropic-ai/sdk');
  const good = new Anthropic({ baseURL: srv.url, apiKey: null, authToken: 'sk-1', maxRetries: 0, timeout: 10_000 });
  const msg = await good.messages.create({ model: 'default', max_tokens: 100, messages: [{ role: 'user', content: 'sdk with auth' }] });
  assert.equal(msg.content[0].text, 'sdk with auth');
  const bad = new Anthropic({ baseURL: srv.url, apiKey: null, authToken: 'sk-wrong', maxRetries: 0, timeout: 10_000 });
  await assert.rejects(
    bad.messages.create({ model: 'default', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 401,
  );
});
