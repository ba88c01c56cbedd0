// Limits on observers (in total and per stream): past one, the documented 529 overloaded_error,
// and nothing else is disturbed. (Active streams, per secret and in total, and body size have
// their own tests in http, tenants and bad_input.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, streamUrl, assertErrorBody, request } from './lib/http.mjs';
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
