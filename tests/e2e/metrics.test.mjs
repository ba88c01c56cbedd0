// GET /metrics is valid Prometheus text (a parser checks every line) and carries the series of
// §1.8, whose values follow what the server did.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/harness.mjs';
import { client, chat, words, waitStatus, streamUrl } from './lib/http.mjs';
import { readSSE } from './lib/sse.mjs';

let srv;
let c;
before(async () => {
  srv = await startServer(['--mock-token-delay-ms', '2', '--model', 'echo=mock:', '--model', 'slow=mock:']);
  c = client(srv.url);
});
after(async () => { if (srv) await srv.stop(); });

/**
 * Parses the Prometheus text exposition format (0.0.4) strictly: HELP/TYPE comments, then
 * samples `name{label="value",...} number`. Returns {types, samples}; throws on any bad line.
 */
function parsePrometheus(text) {
  const types = new Map();
  const samples = [];
  const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.match(name, nameRe, line);
      assert.ok(['counter', 'gauge', 'summary', 'histogram', 'untyped'].includes(type), line);
      assert.ok(!types.has(name), `TYPE of ${name} given twice`);
      types.set(name, type);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[3] !== undefined && m[3] !== '') {
      const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let pos = 0;
      while (pos < m[3].length) {
        labelRe.lastIndex = pos;
        const l = labelRe.exec(m[3]);
        assert.ok(l, `bad labels in ${line}`);
        labels[l[1]] = l[2];
        pos = labelRe.lastIndex;
      }
    }
    const value = Number(m[4]);
    assert.ok(Number.isFinite(value), `bad value in ${line}`);
    const family = m[1].replace(/_(sum|count|bucket)$/, '');
    assert.ok(types.has(m[1]) || types.has(family), `${m[1]} has no TYPE`);
    samples.push({ name: m[1], labels, value });
  }
  return { types, samples };
}

const scrape = async () => parsePrometheus((await c.get('/metrics')).text);
const value = (m, name, labels = {}) => m.samples
  .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  .reduce((a, s) => a + s.value, 0);

test('every §1.8 series is there, with the right type', async () => {
  const m = await scrape();
  const want = {
    spool_requests_total: 'counter',
    spool_streams: 'gauge',
    spool_observers: 'gauge',
    spool_events_sent_total: 'counter',
    spool_bytes_sent_total: 'counter',
    spool_output_tokens_total: 'counter',
    spool_queued_jobs: 'gauge',
    spool_active_jobs: 'gauge',
    spool_broker_seconds: 'summary',
    spool_cancel_seconds: 'summary',
  };
  for (const [name, type] of Object.entries(want)) assert.equal(m.types.get(name), type, name);
});

test('the values follow what the server did', async () => {
  const before = await scrape();
  const id = `metrics-${process.pid}`;
  assert.equal((await c.start(chat(words(25), { model: 'echo' }), id)).status, 200);
  await waitStatus(c, id);
  const log = await readSSE(streamUrl(srv.url, id));
  assert.equal((await c.status(id)).status, 200);
  const running = `metrics-cancel-${process.pid}`;
  assert.equal((await c.start(chat(words(5000), { model: 'slow' }), running)).status, 200);
  assert.equal((await c.cancel(running)).status, 200);
  const m = await scrape();
  const started = (x) => value(x, 'spool_requests_total', { route: 'start', status: '200' });
  assert.equal(started(m) - started(before), 2);
  assert.ok(value(m, 'spool_requests_total', { route: 'status', status: '200' })
    - value(before, 'spool_requests_total', { route: 'status', status: '200' }) >= 1);
  assert.ok(value(m, 'spool_output_tokens_total', { model: 'echo' }) - value(before, 'spool_output_tokens_total', { model: 'echo' }) >= 25);
  assert.ok(value(m, 'spool_events_sent_total') - value(before, 'spool_events_sent_total') >= log.stored.length);
  assert.ok(value(m, 'spool_bytes_sent_total') - value(before, 'spool_bytes_sent_total') >= log.body.length - 100);
  assert.equal(value(m, 'spool_cancel_seconds_count') - value(before, 'spool_cancel_seconds_count'), 1);
  assert.ok(value(m, 'spool_broker_seconds_count') > value(before, 'spool_broker_seconds_count'));
  assert.ok(value(m, 'spool_streams', { status: 'completed' }) >= 1);
  assert.ok(value(m, 'spool_streams', { status: 'cancelled' }) >= 1);
  assert.equal(value(m, 'spool_active_jobs'), 0);
  assert.equal(value(m, 'spool_queued_jobs'), 0);
});
