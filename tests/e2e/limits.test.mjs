// Limits on observers (in total and per stream): past one, the documented 529 overloaded_error,
// and nothing else is disturbed. (Active streams, per secret and in total, and body size have
// their own tests in http, tenants and bad_input.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, streamUrl, assertErrorBody, request, waitUntil } from './lib/http.mjs';
import { startRedis, redisMissing } from './lib/redis.mjs';
import { openSSE } from './lib/sse.mjs';

let seq = 0;
const nextId = (tag) => `limits-${tag}-${process.pid}-${++seq}`;

test('observers past --max-observers-per-stream or --max-observers get 529; the others keep streaming', async () => {
  const srv = await startServer(['--mock-token-delay-ms', '10', '--max-observers-per-stream', '2',
    '--max-observers', '3']);
  try {
    const c = client(srv.url);
    const a = nextId('a');
    const b = nextId('b');
    assert.equal((await c.start(chat(words(60)), a)).status, 200);
    assert.equal((await c.start(chat(words(60)), b)).status, 200);
    const onA = [openSSE(streamUrl(srv.url, a)), openSSE(streamUrl(srv.url, a))];
    await Promise.all(onA.map((o) => o.waitFor((e) => e.event === 'message_start', 5000)));
    // a third observer of the same stream: 529
    const third = await request(srv.url, 'GET', `/v1/messages/async/${a}/stream`);
    assertErrorBody(assert, third, 529, 'overloaded_error');
    assert.match(third.text, /of this stream \(limit 2\)/);
    // another stream still has room, up to the total of 3
    const onB = openSSE(streamUrl(srv.url, b));
    await onB.waitFor((e) => e.event === 'message_start', 5000);
    const fourth = await request(srv.url, 'GET', `/v1/messages/async/${b}/stream`);
    assertErrorBody(assert, fourth, 529, 'overloaded_error');
    assert.match(fourth.text, /Too many open observers \(limit 3\)/);
    // the refused ones changed nothing: every admitted observer gets its whole stream
    const done = await Promise.all([...onA, onB].map((o) => o.done));
    for (const r of done) {
      assert.equal(r.stored.at(-1).event, 'message_stop');
      assert.equal(r.stored.filter((e) => e.event === 'content_block_delta').length, 60);
    }
    // once they are gone there is room again
    const later = await request(srv.url, 'GET', `/v1/messages/async/${a}/stream`);
    assert.equal(later.status, 200);
  } finally {
    await srv.stop();
  }
});

test('a limit below 1 is a clear start-up error', async () => {
  for (const flag of ['--max-observers-per-stream', '--max-observers', '--max-active-streams']) {
    await assert.rejects(startServer([flag, '0']), /must be at least 1/);
  }
});

/** Starts `n` quick jobs and waits until each is over; returns their ids. */
async function fill(c, n, tag) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const id = nextId(tag);
    const r = await c.start(chat('kept'), id);
    assert.equal(r.status, 200, r.text);
    ids.push(id);
  }
  return ids;
}

test('streams kept past --max-retained-streams (or a tenant\'s max_retained_streams) get 529 until some go', async () => {
  const fs = await import('node:fs');
  const { freshDataDir } = await import('./lib/harness.mjs');
  const file = `${freshDataDir()}/spool.toml`;
  fs.writeFileSync(file, 'max_retained_streams = 5\n\n[[tenants]]\nname = "small"\nsecret = "Bearer small"\n' +
    'max_retained_streams = 2\n\n[[tenants]]\nname = "big"\nsecret = "Bearer big"\n');
  const srv = await startServer(['--config', file, '--mock-token-delay-ms', '0']);
  try {
    const small = client(srv.url, { Authorization: 'Bearer small' });
    const big = client(srv.url, { Authorization: 'Bearer big' });
    const mine = await fill(small, 2, 'small');
    const refused = await small.start(chat('one more'), nextId('small'));
    assertErrorBody(assert, refused, 529, 'overloaded_error');
    assert.match(refused.json.detail, /Too many streams kept for this secret \(limit 2\)/);
    await fill(big, 3, 'big');  // 5 in all
    const full = await big.start(chat('one more'), nextId('big'));
    assertErrorBody(assert, full, 529, 'overloaded_error');
    assert.match(full.json.detail, /Too many streams kept \(limit 5\)/);
    assert.equal((await small.remove(mine[0])).status, 200);
    assert.equal((await small.start(chat('room again'), nextId('small'))).status, 200);
  } finally {
    await srv.stop();
  }
});

test('with Redis, expired streams stop counting against --max-retained-streams', { skip: redisMissing }, async () => {
  const redis = await startRedis();
  let srv = null;
  try {
    srv = await startServer(['--broker', 'redis', '--redis-url', redis.url, '--max-retained-streams', '2',
      '--stream-expiration', '1', '--mock-token-delay-ms', '0']);
    const c = client(srv.url);
    await fill(c, 2, 'redis');
    assertErrorBody(assert, await c.start(chat('more'), nextId('redis')), 529, 'overloaded_error');
    await waitUntil(async () => (await c.start(chat('after expiry'), nextId('redis'))).status === 200,
      { timeoutMs: 15_000, intervalMs: 500, what: 'a start once the kept streams expired' });
  } finally {
    if (srv) await srv.stop();
    await redis.stop();
  }
});

test('200 starts at once against --max-active-streams 50: exactly 50 start, the others get 529', async () => {
  const srv = await startServer(['--max-active-streams', '50', '--mock-token-delay-ms', '1000']);
  try {
    const c = client(srv.url);
    const answers = await Promise.all(Array.from({ length: 200 }, () => c.start(chat(words(20)), undefined, { timeoutMs: 20_000 })));
    const started = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status === 529);
    assert.equal(started.length, 50, `started ${started.length}`);
    assert.equal(refused.length, 150);
    const listed = await c.get('/v1/messages/async?status=pending,processing&limit=1000');
    assert.equal(listed.json.data.length, 50, 'no stream of a refused start was kept');
  } finally {
    await srv.stop();
  }
});
