// GET /v1/messages/async: the streams a caller may see, newest first, filtered by status,
// paginated with a cursor.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitStatus, ASYNC, assertErrorBody } from './lib/http.mjs';

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '5']);
  c = client(srv.url);
});
after(async () => { if (srv) await srv.stop(); });

let seq = 0;
const nextId = (tag) => `list-${tag}-${process.pid}-${++seq}`;
const list = (query = '', cl = c) => cl.request('GET', `${ASYNC}${query}`);

test('lists streams newest first with their status record, and pages through all of them', async () => {
  const ids = [];
  for (let i = 0; i < 5; i += 1) {
    const id = nextId('page');
    assert.equal((await c.start(chat(`hello ${i}`), id)).status, 200);
    ids.push(id);
    await waitStatus(c, id);
  }
  const r = await list();
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json.data));
  const mine = r.json.data.filter((s) => ids.includes(s.message_id)).map((s) => s.message_id);
  assert.deepEqual(mine, [...ids].reverse(), 'newest first');
  // each entry is what /status says about the stream
  const first = r.json.data.find((s) => s.message_id === ids[4]);
  const status = (await c.status(ids[4])).json;
  assert.deepEqual(first, status);

  // pages of 2 visit every stream once, in order
  const seen = [];
  let cursor = null;
  for (let pages = 0; pages < 100; pages += 1) {
    const page = await list(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200, page.text);
    assert.ok(page.json.data.length <= 2);
    seen.push(...page.json.data.map((s) => s.message_id));
    if (!page.json.has_more) {
      assert.equal(page.json.next_cursor, null);
      break;
    }
    cursor = page.json.next_cursor;
    assert.equal(typeof cursor, 'string');
  }
  assert.equal(new Set(seen).size, seen.length, 'no stream twice');
  const all = (await list('?limit=1000')).json.data.map((s) => s.message_id);
  assert.deepEqual(seen, all);
});

test('filters by status, one or several', async () => {
  const done = nextId('done');
  const running = nextId('running');
  assert.equal((await c.start(chat('quick'), done)).status, 200);
  await waitStatus(c, done);
  assert.equal((await c.start(chat(words(5000)), running)).status, 200);
  await waitStatus(c, running, ['processing']);
  const completed = (await list('?status=completed&limit=1000')).json.data;
  assert.ok(completed.every((s) => s.status === 'completed'));
  assert.ok(completed.some((s) => s.message_id === done));
  assert.ok(!completed.some((s) => s.message_id === running));
  const active = (await list('?status=pending,processing&limit=1000')).json.data;
  assert.deepEqual(active.map((s) => s.message_id), [running]);
  assert.equal((await c.cancel(running)).status, 200);
  const cancelled = (await list('?status=cancelled')).json.data;
  assert.ok(cancelled.some((s) => s.message_id === running));
  // deleted streams are not listed
  assert.equal((await c.remove(done)).status, 200);
  assert.ok(!(await list('?limit=1000')).json.data.some((s) => s.message_id === done));
});

test('bad list parameters are a clear 400', async () => {
  for (const q of ['?limit=0', '?limit=abc', '?limit=1001', '?limit=-1', '?status=finished', '?status=completed,',
    '?cursor=zz', '?cursor=0123', `?cursor=${Buffer.from('nospace').toString('hex')}`]) {
    const r = await list(q);
    assertErrorBody(assert, r, 400, 'invalid_request_error');
  }
  assert.equal((await c.request('DELETE', ASYNC)).status, 405);
});

test('with stream scoping, each secret lists only its own streams', async () => {
  const scoped = await startServer(['--auth-secret', 'Bearer one', '--auth-secrets', 'Bearer two',
    '--stream-scoping', 'true']);
  try {
    const one = client(scoped.url, { Authorization: 'Bearer one' });
    const two = client(scoped.url, { Authorization: 'Bearer two' });
    const a = nextId('one');
    const b = nextId('two');
    assert.equal((await one.start(chat('a'), a)).status, 200);
    assert.equal((await two.start(chat('b'), b)).status, 200);
    assert.deepEqual((await list('', one)).json.data.map((s) => s.message_id), [a]);
    assert.deepEqual((await list('', two)).json.data.map((s) => s.message_id), [b]);
    assert.equal((await list('', client(scoped.url))).status, 401);
  } finally {
    await scoped.stop();
  }
});
