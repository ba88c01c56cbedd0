// Issue 15: a page on another origin than Spool, in Debian's Chromium. The page and its backend are
// the example app (examples/browser-app): the backend starts jobs with the secret, the page watches
// them on Spool with a native EventSource and the job's read token. Spool is reached as
// http://localhost:<port> and the page as http://127.0.0.1:<port>: another host and port, so every
// call from the page to Spool is cross-origin and goes through CORS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../e2e/lib/harness.mjs';
import { textOf } from '../e2e/lib/sse.mjs';
import { launch, newPage, shot, serverEvents, words } from './lib.mjs';
import { startExample, freePort, metric, cuttableProxy } from './example.mjs';

const SECRET = 'Bearer sk-browser-test-7f3a';
const auth = { Authorization: SECRET };

let browser;
let srv;      // Spool: mock engine, a word every 20 ms, auth on, CORS for the app's origin only
let proxy;    // between the browser and Spool, to cut connections
let spool;    // Spool as the page reaches it: http://localhost:<proxy port>
let app;      // the example backend on the allowed origin
let other;    // the same backend on an origin Spool does not allow

before(async () => {
  browser = await launch();
  const appPort = await freePort();
  srv = await startServer(['--mock-token-delay-ms', '20', '--auth-secret', SECRET,
    '--cors-origins', `http://127.0.0.1:${appPort}`]);
  proxy = await cuttableProxy(new URL(srv.url));
  spool = `http://localhost:${proxy.port}`;
  app = await startExample({ port: appPort, spoolUrl: srv.url, publicUrl: spool, secret: SECRET });
  other = await startExample({ port: 0, spoolUrl: srv.url, publicUrl: spool, secret: SECRET });
});
after(async () => {
  await browser?.close();
  proxy?.close();
  app?.stop();
  other?.stop();
  await srv?.stop();
});

/** A page with a 20 s deadline on every wait, recording the connection states it showed. */
async function openPage(url) {
  const page = await newPage(browser);
  page.setDefaultTimeout(20_000);
  page.streams = [];  // every request the page made for a stream: {url, lastEventId}
  page.on('request', (r) => {
    if (!new URL(r.url()).pathname.endsWith('/stream')) return;
    const s = { url: r.url(), lastEventId: null };
    page.streams.push(s);
    // The headers as sent (the network stack adds Last-Event-ID after the 'request' event).
    s.headersRead = r.allHeaders().then((h) => { s.lastEventId = h['last-event-id'] ?? null; }, () => {});
  });
  await page.addInitScript(() => {
    window.connStates = [];
    addEventListener('DOMContentLoaded', () => {
      const conn = document.getElementById('conn');
      new MutationObserver(() => {
        if (window.connStates.at(-1) !== conn.textContent) window.connStates.push(conn.textContent);
      }).observe(conn, { childList: true, characterData: true, subtree: true });
    });
  });
  const res = await page.goto(url);
  assert.equal(res.status(), 200);
  return page;
}

/** Submits `prompt` on the page with a backend; returns /api/ask's answer once the page shows the job. */
async function ask(page, prompt) {
  await page.fill('#prompt', prompt);
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/ask'));
  await page.click('#ask');
  const job = await (await answer).json();
  assert.ok(job.message_id, JSON.stringify(job));
  await page.waitForFunction((id) => document.getElementById('job-id').textContent === id, job.message_id);
  return job;
}

const answerText = (page) => page.textContent('#answer');

/** Asserts the page showed `want` (the server's text) exactly, naming any word shown twice or missing. */
function assertSameText(shown, want) {
  if (shown === want) return;
  const count = new Map();
  for (const w of shown.split(' ')) count.set(w, (count.get(w) ?? 0) + 1);
  const twice = [...count].filter(([, n]) => n > 1).map(([w]) => w);
  const missing = want.split(' ').filter((w) => !count.has(w));
  assert.fail(`the page's text differs from the server's (${shown.length} vs ${want.length} chars): ` +
    `shown twice: ${twice.join(' ') || 'none'}; missing: ${missing.join(' ') || 'none'}`);
}
const waitAnswerLonger = (page, n) => page.waitForFunction(
  (min) => document.getElementById('answer').textContent.length > min, n);
const waitDone = (page) => page.waitForSelector('body[data-done=true]');

test('the page asks its backend, then streams the whole answer from Spool with EventSource + read token', async () => {
  const page = await openPage(`${app.url}/`);
  const sent = [];  // everything the browser sent anywhere, to check the secret is never among it
  page.on('request', (r) => sent.push(`${r.url()} ${JSON.stringify(r.headers())} ${r.postData() ?? ''}`));
  const prompt = words(40);
  const job = await ask(page, prompt);
  assert.match(job.read_token, /^\d+\.1\.[0-9a-f]{32}$/);
  assert.equal(job.stream_url, `${spool}/v1/messages/async/${job.message_id}/stream?read_token=${encodeURIComponent(job.read_token)}`);
  await waitAnswerLonger(page, 0);
  await shot(page, 'cross-01-streaming');
  await waitDone(page);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'completed');
  const serverText = textOf(await serverEvents(srv.url, job.message_id, auth));
  assert.equal(serverText, prompt);
  assertSameText(await answerText(page), serverText);
  assert.equal(await page.textContent('#stop-reason'), 'end_turn');
  assert.equal(await page.textContent('#error'), '');
  assert.deepEqual(page.streams.map((s) => s.url), [job.stream_url], 'one connection, from the start');
  assert.ok(!sent.some((s) => s.includes('sk-browser-test')), 'the secret never reaches the browser');
  assert.deepEqual(page.errors, []);
  await shot(page, 'cross-02-completed');
  await page.context().close();
});

test('a cut connection: EventSource reconnects by itself with Last-Event-ID; every word exactly once', async () => {
  const page = await openPage(`${app.url}/`);
  const prompt = words(300);
  const job = await ask(page, prompt);
  await waitAnswerLonger(page, 60);
  assert.ok(proxy.cut() >= 1, 'the stream\'s connection was cut');
  await page.waitForFunction(() => document.getElementById('conn').textContent === 'reconnecting');
  const lastSeen = await page.evaluate(() => JSON.parse(sessionStorage.getItem('spool-example-job')).last);
  await shot(page, 'cross-03-cut');
  await waitDone(page);
  const serverText = textOf(await serverEvents(srv.url, job.message_id, auth));
  assert.equal(serverText, prompt);
  assertSameText(await answerText(page), serverText);
  await Promise.all(page.streams.map((st) => st.headersRead));
  const resumed = page.streams.filter((s) => s.lastEventId !== null);
  assert.ok(resumed.length >= 1, `a reconnection sent Last-Event-ID: ${JSON.stringify(page.streams)}`);
  assert.ok(page.streams.every((s) => s.url === job.stream_url), 'the same URL: the browser reconnected by itself');
  assert.equal(resumed[0].lastEventId, lastSeen, 'resumed after the last event the page had');
  assert.ok(Number(lastSeen) > 3);
  const states = await page.evaluate(() => window.connStates);
  assert.ok(states.includes('reconnecting') && states.lastIndexOf('open') > states.indexOf('reconnecting'),
    `the page showed the cut and the reconnection: ${states}`);
  assert.deepEqual(page.errors, []);
  await shot(page, 'cross-04-resumed');
  await page.context().close();
});

test('a reload mid-stream resumes from sessionStorage\'s last event id: the text is the log exactly once', async () => {
  const page = await openPage(`${app.url}/`);
  const prompt = words(120);
  const job = await ask(page, prompt);
  await waitAnswerLonger(page, 80);
  await shot(page, 'cross-05-before-reload');
  await page.reload();
  await waitDone(page);
  const serverText = textOf(await serverEvents(srv.url, job.message_id, auth));
  assert.equal(serverText, prompt);
  assertSameText(await answerText(page), serverText);
  assert.equal(page.streams.length, 2, `one stream before the reload, one after: ${JSON.stringify(page.streams)}`);
  assert.equal(page.streams[0].url, job.stream_url);
  const after = new URL(page.streams[1].url).searchParams;
  assert.equal(after.get('read_token'), job.read_token);
  assert.ok(Number(after.get('last_event_id')) > 3, `resumed after event ${after.get('last_event_id')}, not from the start`);
  assert.deepEqual(page.errors, []);
  await shot(page, 'cross-06-after-reload');
  await page.context().close();
});

// After a reload the page's EventSource URL carries ?last_event_id=N; when that connection is cut
// later, the browser reconnects to the same URL with the header Last-Event-ID: M (M > N). The
// header wins, so nothing is sent twice.
test('a reload, then a cut: the reconnection resumes after the newest event (header over query)', async () => {
  const page = await openPage(`${app.url}/`);
  const prompt = words(300);
  const job = await ask(page, prompt);
  await waitAnswerLonger(page, 40);
  await page.reload();
  await page.waitForFunction(() => document.getElementById('conn').textContent === 'open');
  const atReload = Number(new URL(page.streams[1].url).searchParams.get('last_event_id'));
  await page.waitForFunction((n) => Number(JSON.parse(sessionStorage.getItem('spool-example-job')).last) > n + 20, atReload);
  assert.ok(proxy.cut() >= 1);
  await page.waitForFunction(() => document.getElementById('conn').textContent === 'reconnecting');
  await waitDone(page);
  const serverText = textOf(await serverEvents(srv.url, job.message_id, auth));
  assert.equal(serverText, prompt);
  assertSameText(await answerText(page), serverText);
  await page.context().close();
});

test('auth with CORS: the page starts a job and reads its status with fetch + Authorization', async () => {
  const page = await openPage(`${app.url}/direct.html`);
  assert.equal(await page.inputValue('#spool'), spool);
  await page.fill('#key', SECRET);
  await page.fill('#prompt', 'direct from the browser');
  await page.click('#ask');
  await page.waitForFunction(() => /^req_/.test(document.getElementById('request-id').textContent));
  const startRequestId = await page.textContent('#request-id');
  await waitDone(page);
  assert.equal(await answerText(page), 'direct from the browser');
  const id = await page.textContent('#job-id');
  assert.equal(textOf(await serverEvents(srv.url, id, auth)), 'direct from the browser');
  await page.click('#read-status');
  await page.waitForFunction(() => document.getElementById('status').textContent.includes('"completed"'));
  const status = JSON.parse(await page.textContent('#status'));
  assert.equal(status.message_id, id);
  assert.equal(status.status, 'completed');
  const statusRequestId = await page.textContent('#request-id');
  assert.match(statusRequestId, /^req_/, 'the request-id header is exposed to the page');
  assert.notEqual(statusRequestId, startRequestId);
  assert.equal(await page.textContent('#error'), '');
  assert.deepEqual(page.errors, []);
  await shot(page, 'cross-07-direct');
  await page.context().close();
});

test('a page on an origin Spool does not allow: the fetch is a TypeError, the preflight a 403, no job started', async () => {
  const list = async () => (await (await fetch(`${srv.url}/v1/messages/async?limit=1000`, { headers: auth })).json()).data.length;
  const before = { jobs: await list(), preflight403: await metric(srv.url, auth, 'route="preflight",status="403"'),
    starts: await metric(srv.url, auth, 'route="start",status="200"') };
  const page = await openPage(`${other.url}/direct.html`);
  await page.fill('#key', SECRET);
  await page.fill('#prompt', 'should never start');
  await page.click('#ask');
  await page.waitForFunction(() => document.getElementById('error').textContent !== '');
  assert.match(await page.textContent('#error'), /^TypeError: Failed to fetch/);
  await shot(page, 'cross-08-disallowed-direct');
  assert.equal(await metric(srv.url, auth, 'route="preflight",status="403"'), before.preflight403 + 1);
  assert.equal(await metric(srv.url, auth, 'route="start",status="200"'), before.starts);
  assert.equal(await list(), before.jobs, 'no job was started');
  assert.equal(await page.textContent('#job-id'), '–');
  await page.context().close();

  // The page with a backend on that origin: its backend starts the job (no browser involved), but
  // the page cannot read the stream, and says so.
  const page2 = await openPage(`${other.url}/`);
  await ask(page2, 'started but unreadable here');
  await page2.waitForFunction(() => /cors_origins/.test(document.getElementById('error').textContent));
  assert.equal(await answerText(page2), '');
  await shot(page2, 'cross-09-disallowed-stream');
  await page2.context().close();
});

test('the read token only reads: cancel with it is 401, and another job\'s stream with it is 401 without data', async () => {
  const page = await openPage(`${app.url}/`);
  const mine = await ask(page, words(100));
  await waitAnswerLonger(page, 0);
  const base = `${spool}/v1/messages/async`;
  const token = encodeURIComponent(mine.read_token);
  // Cancel with the job's own token, from the page, while it runs: 401 (the page can read it: CORS).
  const cancel = await page.evaluate(async (url) => (await fetch(url, { method: 'POST' })).status,
    `${base}/${mine.message_id}/cancel?read_token=${token}`);
  assert.equal(cancel, 401);
  await waitDone(page);
  assert.equal(await page.textContent('#stop-reason'), 'end_turn', 'not cancelled');
  assert.equal(await answerText(page), words(100));

  // Another job's stream and status with this token: 401, no data, and EventSource gives up.
  const theirs = await (await fetch(`${app.url}/api/ask`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: words(30) }),
  })).json();
  const foreign = `${base}/${theirs.message_id}/stream?read_token=${token}`;
  const refused = page.waitForResponse((r) => r.url() === foreign);
  const seen = await page.evaluate((url) => new Promise((resolve) => {
    const got = [];
    const es = new EventSource(url);
    for (const t of ['message_start', 'content_block_delta', 'message']) es.addEventListener(t, (e) => got.push(e.data));
    es.onerror = () => { resolve({ state: es.readyState, got }); es.close(); };
  }), foreign);
  assert.equal((await refused).status(), 401);
  assert.deepEqual(seen, { state: 2, got: [] }, 'closed (not reconnecting), no data');
  const status = await page.evaluate(async (url) => (await fetch(url)).status,
    `${base}/${theirs.message_id}/status?read_token=${token}`);
  assert.equal(status, 401);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
