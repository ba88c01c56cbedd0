// §1.1 POST /v1/messages/async — start a job.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, assertErrorBody, waitStatus, streamUrl, request, ASYNC } from './lib/http.mjs';
import { readSSE, textOf } from './lib/sse.mjs';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '10']);
  c = client(srv.url);
});
after(async () => { await srv.stop(); });

function assertStartBody(res, id) {
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(res.json).sort(), ['message', 'message_id', 'status']);
  assert.deepEqual(res.json, { message_id: id ?? res.json.message_id, status: 'pending', message: 'Request initiated successfully' });
}

test('without message_id the server generates distinct lowercase UUID4 ids', async () => {
  const ids = new Set();
  for (let i = 0; i < 5; i++) {
    const r = await c.start(chat('hello there'));
    assertStartBody(r);
    assert.match(r.json.message_id, UUID4, `not a lowercase UUID4: ${r.json.message_id}`);
    ids.add(r.json.message_id);
  }
  assert.equal(ids.size, 5, 'generated ids must be unique');
  for (const id of ids) {
    const s = await c.status(id);
    assert.equal(s.status, 200);
    assert.equal(s.json.message_id, id);
  }
});

test('an empty ?message_id= also generates a UUID4', async () => {
  const r = await c.request('POST', `${ASYNC}?message_id=`, { json: chat('empty id') });
  assertStartBody(r);
  assert.match(r.json.message_id, UUID4);
});

test('?message_id= is used as the id and the job is addressable by it', async () => {
  const id = `my-Id_${Date.now()}.v1~x`;
  const r = await c.start(chat('use my id'), id);
  assertStartBody(r, id);
  const s = await waitStatus(c, id);
  assert.equal(s.message_id, id);
  assert.equal(s.status, 'completed');
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal(textOf(log.events), 'use my id');
});

test('the response returns before the engine has produced anything', async () => {
  // 300 tokens at 10 ms each: the job runs ~3 s; the start answer must come at once.
  const id = `early-${Date.now()}`;
  const t0 = Date.now();
  const r = await c.start(chat(words(300)), id);
  const dt = Date.now() - t0;
  assertStartBody(r, id);
  assert.ok(dt < 1000, `start took ${dt} ms`);
  const s = await c.status(id);
  assert.ok(['pending', 'processing'].includes(s.json.status), s.text);
  assert.equal((await c.cancel(id)).status, 200);
});

test('duplicate message_id is 400 "Stream with this message_id already exists" and leaves the original alone', async () => {
  const id = `dup-${Date.now()}`;
  assertStartBody(await c.start(chat('original text'), id), id);
  await waitStatus(c, id);
  const before1 = await readSSE(streamUrl(srv.url, id));
  const r = await c.start(chat('second text'), id);
  const b = assertErrorBody(assert, r, 400, 'invalid_request_error');
  assert.equal(b.error.detail.explanation, 'Stream with this message_id already exists');
  // Also while the original is still running.
  const id2 = `dup-running-${Date.now()}`;
  assertStartBody(await c.start(chat(words(200)), id2), id2);
  const r2 = await c.start(chat('x'), id2);
  const b2 = assertErrorBody(assert, r2, 400, 'invalid_request_error');
  assert.equal(b2.error.detail.explanation, 'Stream with this message_id already exists');
  await c.cancel(id2);
  // Original untouched.
  const after1 = await readSSE(streamUrl(srv.url, id));
  assert.ok(before1.body.equals(after1.body), 'the original log changed after a rejected duplicate');
  assert.equal(textOf(after1.events), 'original text');
});

const badIds = [
  ['encoded slash', 'a%2Fb', null],
  ['space', 'a%20b', 'a b'],
  ['leading space', '%20ab', ' ab'],
  ['tab', 'a%09b', 'a\tb'],
  ['newline', 'a%0Ab', 'a\nb'],
  ['carriage return', 'a%0Db', 'a\rb'],
  ['control char 0x01', 'a%01b', 'a\x01b'],
  ['NUL', 'a%00b', null],
  ['DEL 0x7f', 'a%7Fb', 'a\x7fb'],
  ['257 bytes', 'x'.repeat(257), 'x'.repeat(257)],
  ['258 bytes of two-byte chars', encodeURIComponent('é'.repeat(129)), 'é'.repeat(129)],
];

for (const [name, raw, decoded] of badIds) {
  test(`message_id with ${name} is 400 and creates nothing`, async () => {
    const r = await c.request('POST', `${ASYNC}?message_id=${raw}`, { json: chat('bad id') });
    assertErrorBody(assert, r, 400, 'invalid_request_error');
    if (decoded !== null) {
      const s = await c.request('GET', `${ASYNC}/${encodeURIComponent(decoded)}/status`);
      assert.ok(s.status === 404 || s.status === 400, `status for rejected id: ${s.status} ${s.text}`);
    }
    // A following valid request still works.
    assertStartBody(await c.start(chat('still fine')));
  });
}

test('message_id of exactly 256 bytes (also multi-byte) is accepted', async () => {
  const a = 'y'.repeat(255) + String(Date.now() % 10);
  assertStartBody(await c.start(chat('long id'), a), a);
  assert.equal((await c.status(a)).status, 200);
  const e = 'é'.repeat(127) + 'z' + String(Date.now() % 10); // 254 + 2 = 256 bytes
  assert.equal(Buffer.byteLength(e), 256);
  assertStartBody(await c.start(chat('utf8 id'), e), e);
  const s = await c.status(e);
  assert.equal(s.status, 200);
  assert.equal(s.json.message_id, e);
});

test('stream:true in the body is ignored by the async start (still JSON, still logged)', async () => {
  const r = await c.start(chat('streamed anyway', { stream: true }));
  assertStartBody(r);
  await waitStatus(c, r.json.message_id);
  const log = await readSSE(streamUrl(srv.url, r.json.message_id));
  assert.equal(textOf(log.events), 'streamed anyway');
});

test('Idempotency-Key: same key and body returns the existing job (200), different body is 409', async () => {
  const key = `key-${Date.now()}-${Math.random()}`;
  const body = chat('idempotent request');
  const r1 = await c.start(body, undefined, { headers: { 'Idempotency-Key': key } });
  assertStartBody(r1);
  const id = r1.json.message_id;
  const r2 = await c.start(body, undefined, { headers: { 'Idempotency-Key': key } });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.message_id, id, 'repeat must return the same message_id');
  assert.deepEqual(r2.json, r1.json, 'repeat must return the existing job\'s response');
  // Also after the job has finished.
  await waitStatus(c, id);
  const r3 = await c.start(body, undefined, { headers: { 'Idempotency-Key': key } });
  assert.equal(r3.status, 200, r3.text);
  assert.equal(r3.json.message_id, id);
  // Only one job ran: its log holds a single message.
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal(log.events.filter((e) => e.event === 'message_start').length, 1);
  assert.equal(textOf(log.events), 'idempotent request');

  const r4 = await c.start(chat('a different body'), undefined, { headers: { 'Idempotency-Key': key } });
  assert.equal(r4.status, 409, r4.text);
  // §5: everything else uses the one error body shape.
  assert.ok(r4.json && r4.json.type === 'error' && typeof r4.json.error?.type === 'string',
    `409 must carry the §5 error body: ${r4.text}`);

  // A different key with the same body starts a new job.
  const r5 = await c.start(body, undefined, { headers: { 'Idempotency-Key': key + '-other' } });
  assertStartBody(r5);
  assert.notEqual(r5.json.message_id, id);
});
