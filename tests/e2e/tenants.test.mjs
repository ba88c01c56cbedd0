// Several auth secrets, named or not (§6): with stream scoping, a stream belongs to the secret
// that created it and is 404 to every other secret on every route; a per-secret limit on
// active streams; ownership kept across a restart even when the secrets are reordered.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, freshDataDir } from './lib/harness.mjs';
import { client, chat, words, waitStatus, streamUrl, assertErrorBody } from './lib/http.mjs';
import { readSSE } from './lib/sse.mjs';

const started = [];
after(async () => { for (const s of started) s.kill(); });

/** A config file with two named tenants (bob limited to 2 active streams) and unnamed secrets. */
function configFile(dir, order = ['alice', 'bob']) {
  const tenants = {
    alice: '[[tenants]]\nname = "alice"\nsecret = "Bearer alice-secret"\n',
    bob: '[[tenants]]\nname = "bob"\nsecret = "Bearer bob-secret"\nmax_active_streams = 2\n',
  };
  const file = path.join(dir, 'spool.toml');
  fs.writeFileSync(file, `stream_scoping = true\nauth_secrets = ["Bearer plain-secret"]\n\n${order.map((n) => tenants[n]).join('\n')}`);
  return file;
}

let seq = 0;
const nextId = (tag) => `tenant-${tag}-${process.pid}-${++seq}`;

test('a stream is 404 to every other secret on every route, the list included', async () => {
  const dir = freshDataDir();
  const srv = await startServer(['--config', configFile(dir), '--mock-token-delay-ms', '20'], { dataDir: dir });
  started.push(srv);
  const alice = client(srv.url, { Authorization: 'Bearer alice-secret' });
  const bob = client(srv.url, { Authorization: 'Bearer bob-secret' });
  const plain = client(srv.url, { Authorization: 'Bearer plain-secret' });
  const id = nextId('alice');
  assert.equal((await alice.start(chat(words(300)), id)).status, 200);
  for (const other of [bob, plain]) {
    const hidden = await other.status(id);
    assert.equal(hidden.status, 404);
    assert.deepEqual(hidden.json, { detail: `Stream with message_id ${id} not found` });
    assert.equal((await other.request('GET', `/v1/messages/async/${id}/stream`)).status, 404);
    assert.equal((await other.cancel(id)).status, 404);
    assert.equal((await other.remove(id)).status, 404);
    const listed = (await other.get('/v1/messages/async?limit=1000')).json.data;
    assert.ok(!listed.some((s) => s.message_id === id));
    // the id is taken, whoever asks (ids are global), but nothing about the stream shows
    assert.equal((await other.start(chat('mine'), id)).status, 400);
  }
  // the owner still sees it whole: nothing the others did changed it
  assert.equal((await alice.status(id)).json.status, 'processing');
  assert.ok((await alice.get('/v1/messages/async')).json.data.some((s) => s.message_id === id));
  assert.equal((await alice.cancel(id)).status, 200);
  // no secret, or a wrong one: 401 everywhere
  assert.equal((await client(srv.url).status(id)).status, 401);
  assert.equal((await client(srv.url, { Authorization: 'Bearer nope' }).get('/v1/messages/async')).status, 401);
  await srv.stop();
});

test('a per-secret limit on active streams is 529 for that secret only', async () => {
  const dir = freshDataDir();
  const srv = await startServer(['--config', configFile(dir), '--mock-token-delay-ms', '50'], { dataDir: dir });
  started.push(srv);
  const bob = client(srv.url, { Authorization: 'Bearer bob-secret' });
  const alice = client(srv.url, { Authorization: 'Bearer alice-secret' });
  const first = nextId('bob');
  const second = nextId('bob');
  assert.equal((await bob.start(chat(words(200)), first)).status, 200);
  assert.equal((await bob.start(chat(words(200)), second)).status, 200);
  const third = await bob.start(chat(words(200)), nextId('bob'));
  assertErrorBody(assert, third, 529, 'overloaded_error');
  assert.match(third.text, /for this secret \(limit 2\)/);
  // others are not affected
  for (let i = 0; i < 3; i += 1) assert.equal((await alice.start(chat('x'), nextId('alice'))).status, 200);
  // a finished stream frees its place
  assert.equal((await bob.cancel(first)).status, 200);
  assert.equal((await bob.start(chat('again'), nextId('bob'))).status, 200);
  await srv.stop();
});

test('ownership survives a restart, with the secrets in another order', async () => {
  const dir = freshDataDir();
  const first = await startServer(['--config', configFile(dir, ['alice', 'bob'])], { dataDir: dir });
  started.push(first);
  const ids = { alice: nextId('alice'), plain: nextId('plain') };
  await client(first.url, { Authorization: 'Bearer alice-secret' }).start(chat('a'), ids.alice);
  await client(first.url, { Authorization: 'Bearer plain-secret' }).start(chat('p'), ids.plain);
  await waitStatus(client(first.url, { Authorization: 'Bearer alice-secret' }), ids.alice);
  await first.stop();
  const second = await startServer(['--config', configFile(dir, ['bob', 'alice'])], { dataDir: dir });
  started.push(second);
  const alice = client(second.url, { Authorization: 'Bearer alice-secret' });
  const plain = client(second.url, { Authorization: 'Bearer plain-secret' });
  const bob = client(second.url, { Authorization: 'Bearer bob-secret' });
  assert.equal((await alice.status(ids.alice)).status, 200);
  assert.equal((await plain.status(ids.plain)).status, 200);
  assert.equal((await bob.status(ids.alice)).status, 404);
  assert.equal((await alice.status(ids.plain)).status, 404);
  const log = await readSSE(streamUrl(second.url, ids.alice), { headers: { Authorization: 'Bearer alice-secret' } });
  assert.equal(log.stored.at(-1).event, 'message_stop');
  await second.stop();
});

test('a tenant table with a mistake is a clear start-up error', async () => {
  const dir = freshDataDir();
  const bad = path.join(dir, 'bad.toml');
  fs.writeFileSync(bad, '[[tenants]]\nname = "x"\nsecret = "Bearer s"\n\n[[tenants]]\nname = "x"\nsecret = "Bearer t"\n');
  await assert.rejects(startServer(['--config', bad], { dataDir: dir }), /declared twice/);
  fs.writeFileSync(bad, '[[tenants]]\nname = "x"\nsecrets = "Bearer s"\n');
  await assert.rejects(startServer(['--config', bad], { dataDir: dir }), /no key 'secrets'/);
  await assert.rejects(startServer(['--tenants', 'nosecret'], { dataDir: dir }), /expected NAME=SECRET/);
});
