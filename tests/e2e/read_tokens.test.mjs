// SPEC §6 read tokens: with auth on, a start answers `read_token`, a capability to read that one
// incarnation of that one stream (?read_token= on its /stream and /status) and nothing else; it
// survives a restart and is valid on every instance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, freshDataDir } from './lib/harness.mjs';
import { client, chat, words, waitStatus, waitUntil, streamUrl, ASYNC } from './lib/http.mjs';
import { readSSE, textOf } from './lib/sse.mjs';
import { startRedis, redisMissing } from './lib/redis.mjs';

const SECRET = 'Bearer sk-reader';
const TOKEN_RE = /^\d{10,}\.\d+\.[0-9a-f]{32}$/;
let srv;
let owner;   // the secret
let nobody;  // no header
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '2', '--auth-secret', SECRET]);
  owner = client(srv.url, { Authorization: SECRET });
  nobody = client(srv.url);
});
after(async () => { await srv.stop(); });

let seq = 0;
const nextId = (tag) => `rt-${tag}-${process.pid}-${++seq}`;
const withToken = (path, token) => `${path}${path.includes('?') ? '&' : '?'}read_token=${encodeURIComponent(token)}`;

async function started(c, id, text = 'read me please') {
  const r = await c.start(chat(text), id);
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.read_token, TOKEN_RE);
  return r.json.read_token;
}

test('a start with auth answers a read token that reads that stream\'s /stream and /status without the secret', async () => {
  const id = nextId('ok');
  const token = await started(owner, id, words(12));
  const s = await nobody.get(withToken(`${ASYNC}/${id}/status`, token));
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.message_id, id);
  const live = await readSSE(withToken(streamUrl(srv.url, id), token));
  assert.equal(live.status, 200);
  assert.equal(textOf(live.events), words(12));
  const full = await readSSE(streamUrl(srv.url, id), { headers: { Authorization: SECRET } });
  assert.equal(live.stored.length, full.stored.length, 'the same log as the secret reads');
  const tail = await readSSE(withToken(streamUrl(srv.url, id, '?last_event_id=3'), token));
  assert.equal(tail.stored[0].id, '4', 'a cursor works with the token');
});

test('the token reads nothing else: not cancel, delete, list, metrics or another job (401 as if absent)', async () => {
  const id = nextId('mine');
  const other = nextId('other');
  const token = await started(owner, id);
  await started(owner, other);
  await waitStatus(owner, other, 'completed');
  for (const [method, path] of [['POST', `${ASYNC}/${id}/cancel`], ['DELETE', `${ASYNC}/${id}/delete`], ['GET', ASYNC],
    ['GET', '/metrics'], ['GET', `${ASYNC}/${other}/status`], ['GET', `${ASYNC}/${other}/stream`],
    ['POST', withToken(ASYNC, '')], ['POST', '/v1/messages']]) {
    const r = await nobody.request(method, withToken(path, token), { json: method === 'POST' ? chat('x') : undefined });
    assert.equal(r.status, 401, `${method} ${path}: ${r.status} ${r.text}`);
    assert.deepEqual(r.json, { detail: 'Not authenticated' });
  }
  assert.equal((await owner.status(id)).status, 200, 'nothing was cancelled or deleted');
  assert.equal((await owner.status(other)).json.status, 'completed');
});

test('a forged, altered or malformed token is 401 exactly as no token', async () => {
  const id = nextId('forged');
  const token = await started(owner, id);
  const [expiry, inc, mac] = token.split('.');
  const flipped = mac.slice(0, -1) + (mac.at(-1) === '0' ? '1' : '0');
  for (const bad of [`${expiry}.${inc}.${flipped}`, `${Number(expiry) + 1000}.${inc}.${mac}`, `${expiry}.2.${mac}`,
    `${expiry}.${inc}`, '', 'x', token + 'a', 'a'.repeat(5000)]) {
    const r = await nobody.get(withToken(`${ASYNC}/${id}/status`, bad));
    assert.equal(r.status, 401, `${bad.slice(0, 40)}: ${r.status}`);
    assert.deepEqual(r.json, { detail: 'Not authenticated' });
  }
});

test('a token of a deleted stream is 404, also once its id is used again; the new start has its own token', async () => {
  const id = nextId('reborn');
  const first = await started(owner, id);
  await waitStatus(owner, id, 'completed');
  assert.equal((await owner.remove(id)).status, 200);
  const gone = await nobody.get(withToken(`${ASYNC}/${id}/status`, first));
  assert.equal(gone.status, 404);
  const second = await started(owner, id, 'the second job');
  assert.notEqual(second, first);
  assert.equal(second.split('.')[1], '2', 'the token names the second incarnation');
  for (const path of [`${ASYNC}/${id}/status`, `${ASYNC}/${id}/stream`]) {
    const r = await nobody.get(withToken(path, first));
    assert.equal(r.status, 404, `${path} with the first job's token: ${r.status}`);
    assert.deepEqual(r.json, { detail: `Stream with message_id ${id} not found` });
  }
  await waitStatus(owner, id, 'completed');
  const s = await nobody.get(withToken(`${ASYNC}/${id}/status`, second));
  assert.equal(s.status, 200);
  assert.equal(s.json.metadata.incarnation, 2);
});

test('a token expires after read_token_ttl', async () => {
  const short = await startServer(['--mock-token-delay-ms', '1', '--auth-secret', SECRET, '--read-token-ttl', '1']);
  try {
    const c = client(short.url, { Authorization: SECRET });
    const id = nextId('ttl');
    const token = await started(c, id);
    const expiry = Number(token.split('.')[0]);
    assert.ok(Math.abs(expiry - (Date.now() / 1000 + 1)) < 3, `expiry ${expiry} is about a second from now`);
    await waitUntil(async () => (await client(short.url).get(withToken(`${ASYNC}/${id}/status`, token))).status === 401,
      { timeoutMs: 5000, what: 'the token to expire' });
    assert.equal((await c.status(id)).status, 200, 'the stream itself is still there');
  } finally {
    await short.stop();
  }
});

test('without auth a start has no read token', async () => {
  const open = await startServer(['--mock-token-delay-ms', '1']);
  try {
    const r = await client(open.url).start(chat('x'));
    assert.equal(r.status, 200);
    assert.equal(r.json.read_token, undefined);
  } finally {
    await open.stop();
  }
});

test('a token survives a restart of the durable node, and read_token_secret makes it independent of the auth secrets', async () => {
  const dataDir = freshDataDir();
  const first = await startServer(['--mock-token-delay-ms', '1', '--auth-secret', SECRET], { dataDir });
  const id = nextId('durable');
  const token = await started(client(first.url, { Authorization: SECRET }), id);
  await waitStatus(client(first.url, { Authorization: SECRET }), id, 'completed');
  await first.stop();
  const second = await startServer(['--mock-token-delay-ms', '1', '--auth-secret', SECRET], { dataDir });
  try {
    assert.equal((await client(second.url).get(withToken(`${ASYNC}/${id}/status`, token))).status, 200);
  } finally {
    await second.stop();
  }
  // Another secret: the derived key changes, so the token does not verify...
  const rotated = await startServer(['--mock-token-delay-ms', '1', '--auth-secret', 'Bearer new'], { dataDir });
  try {
    assert.equal((await client(rotated.url).get(withToken(`${ASYNC}/${id}/status`, token))).status, 401);
  } finally {
    await rotated.stop();
  }
  // ...unless the tokens are signed with a configured read_token_secret.
  const keyed = ['--mock-token-delay-ms', '1', '--read-token-secret', 'tokens-key-1'];
  const a = await startServer([...keyed, '--auth-secret', SECRET], { dataDir });
  let pinned;
  try {
    pinned = (await client(a.url, { Authorization: SECRET }).start(chat('pinned'), nextId('pinned'))).json;
  } finally {
    await a.stop();
  }
  const b = await startServer([...keyed, '--auth-secret', 'Bearer rotated'], { dataDir });
  try {
    const r = await client(b.url).get(withToken(`${ASYNC}/${pinned.message_id}/status`, pinned.read_token));
    assert.equal(r.status, 200, r.text);
  } finally {
    await b.stop();
  }
});

test('a token from one instance reads the stream on another (Redis broker)', { skip: redisMissing }, async () => {
  const redis = await startRedis();
  const args = ['--broker', 'redis', '--redis-url', redis.url, '--mock-token-delay-ms', '5', '--auth-secret', SECRET];
  const [a, b] = await Promise.all([startServer(args), startServer(args)]);
  try {
    const id = nextId('cluster');
    const token = await started(client(a.url, { Authorization: SECRET }), id, words(10));
    const seen = await readSSE(withToken(streamUrl(b.url, id), token));
    assert.equal(seen.status, 200);
    assert.equal(textOf(seen.events), words(10));
    assert.equal((await client(b.url).get(withToken(`${ASYNC}/${id}/status`, token))).status, 200);
    assert.equal((await client(b.url).post(withToken(`${ASYNC}/${id}/cancel`, token))).status, 401);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await redis.stop();
  }
});
