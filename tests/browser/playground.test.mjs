// The web playground (issue 6) in a real browser: Debian's Chromium driven by playwright-core,
// against the real spool binary. Each step leaves a screenshot in artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, freshDataDir } from '../e2e/lib/harness.mjs';
import {
  launch, newPage, shot, serverEvents, serverStatus, pageText, startFromForm, waitForText, words,
} from './lib.mjs';
import { textOf } from '../e2e/lib/sse.mjs';

let browser;
let srv;  // a server whose mock answers one word every 40 ms

before(async () => {
  browser = await launch();
  srv = await startServer(['--mock-token-delay-ms', '40']);
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

test('the page is served by spool itself, with its files and no outside requests', async () => {
  const page = await newPage(browser);
  const outside = [];
  page.on('request', (r) => { if (!r.url().startsWith(srv.url)) outside.push(r.url()); });
  const res = await page.goto(`${srv.url}/`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /default-src 'self'/);
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
  assert.equal(await page.inputValue('#model'), 'mock');
  assert.deepEqual(outside, []);
  assert.deepEqual(page.errors, []);
  await shot(page, '01-empty-page');
  await page.context().close();
});

test('start a job and watch its text grow live, then complete', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.url}/`);
  const prompt = words(60);
  const id = await startFromForm(page, prompt);
  await waitForText(page);
  const early = (await pageText(page)).length;
  await shot(page, '02-text-growing');
  await waitForText(page, early);
  assert.ok(early < prompt.length, 'the text arrived in pieces, not at once');
  await page.waitForSelector('#job-badge.s-completed');
  await page.waitForSelector('.stop-reason');
  assert.equal(await pageText(page), prompt);
  assert.equal(await pageText(page), textOf(await serverEvents(srv.url, id)));
  // The status panel and the recent-jobs list show it.
  assert.equal(await page.textContent('dd[data-field="status"]'), 'completed');
  assert.equal(await page.textContent('dd[data-field="output tokens"]'), '60');
  await page.waitForSelector(`#jobs-list li[data-id="${id}"]`);
  assert.match(await page.textContent(`#jobs-list li[data-id="${id}"]`), /completed/);
  assert.deepEqual(page.errors, []);
  await shot(page, '03-completed');
  await page.context().close();
});

test('a reload mid-stream resumes after the last event: the text is the log exactly once', async () => {
  const page = await newPage(browser);
  const resumes = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/stream')) resumes.push(Number(r.headers()['last-event-id']));
  });
  await page.goto(`${srv.url}/`);
  const prompt = words(80);
  const id = await startFromForm(page, prompt);
  await waitForText(page, 40);
  await shot(page, '04-before-reload');
  await page.reload();
  await page.waitForSelector('#job-badge.s-completed');
  await page.waitForFunction(() => document.querySelector('.stop-reason'));
  await shot(page, '05-after-reload-completed');
  const serverText = textOf(await serverEvents(srv.url, id));
  assert.equal(serverText, prompt);
  assert.equal(await pageText(page), serverText);
  assert.equal(resumes.length, 2, `one stream request before the reload and one after: ${resumes}`);
  assert.equal(resumes[0], 0);
  assert.ok(resumes[1] > 3, `the reload resumed after event ${resumes[1]}, not from the start`);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a second tab opened from the link shows the same job; both see the same text', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.url}/`);
  const prompt = words(60);
  const id = await startFromForm(page, prompt);
  const link = `${srv.url}/#job=${encodeURIComponent(id)}`;
  assert.equal(await page.getAttribute('#job-link', 'href'), `#job=${encodeURIComponent(id)}`);
  const other = await newPage(browser);  // another device: its own storage
  await other.goto(link);
  await waitForText(other);
  // Both tabs are observers of the job while it runs.
  let observers = 0;
  for (let i = 0; i < 50 && observers < 2; i++) {
    const st = await serverStatus(srv.url, id);
    observers = st.metadata.observers;
    if (st.status === 'completed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(observers, 2);
  await shot(other, '06-second-tab');
  await page.waitForSelector('#job-badge.s-completed');
  await other.waitForSelector('#job-badge.s-completed');
  await other.waitForSelector('.stop-reason');
  assert.equal(await pageText(other), prompt);
  assert.equal(await pageText(page), prompt);
  await other.context().close();
  await page.context().close();
});

test('switching jobs mid-stream: each job shows only its own text, from the list or the address', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.url}/`);
  const long = words(120);
  const a = await startFromForm(page, long);
  await waitForText(page);
  const b = await startFromForm(page, 'bee buzz');
  await page.waitForSelector('#job-badge.s-completed');
  await page.waitForSelector('.stop-reason');
  assert.equal(await pageText(page), 'bee buzz');
  assert.equal(await page.textContent('#job-id'), b);
  assert.notEqual(await page.textContent('#job-conn'), 'reconnecting…');
  await page.click(`#jobs-list li[data-id="${a}"]`);
  await page.waitForFunction((id) => document.querySelector('#job-id').textContent === id, a);
  await page.waitForSelector('#job-badge.s-completed');
  await page.waitForSelector('.stop-reason');
  assert.equal(await pageText(page), long);
  await page.goBack();  // the address names the job: back is job B again
  await page.waitForFunction((id) => document.querySelector('#job-id').textContent === id, b);
  await page.waitForSelector('.stop-reason');
  assert.equal(await pageText(page), 'bee buzz');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('cancel stops the job; the page shows it cancelled', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.url}/`);
  const id = await startFromForm(page, words(200));
  await waitForText(page);
  await page.click('#job-cancel');
  await page.waitForSelector('#job-badge.s-cancelled');
  await page.waitForFunction(() => document.querySelector('.stop-reason')?.textContent.includes('cancelled'));
  assert.equal((await serverStatus(srv.url, id)).status, 'cancelled');
  assert.ok(await page.isDisabled('#job-cancel'));
  const shown = await pageText(page);
  assert.equal(shown, textOf(await serverEvents(srv.url, id)));
  assert.ok(shown.length < words(200).length);
  await shot(page, '07-cancelled');
  await page.context().close();
});

test('delete asks once more, removes the job and its list entry', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.url}/`);
  const id = await startFromForm(page, words(5));
  await page.waitForSelector('#job-badge.s-completed');
  await page.waitForSelector(`#jobs-list li[data-id="${id}"]`);
  await page.click('#job-delete');
  assert.equal(await page.textContent('#job-delete'), 'Really delete?');
  assert.notEqual(await serverStatus(srv.url, id), null, 'the first click deletes nothing');
  await page.click('#job-delete');
  await page.waitForFunction(() => document.querySelector('#output').textContent.includes('Deleted.'));
  assert.equal(await serverStatus(srv.url, id), null);
  await page.waitForSelector(`#jobs-list li[data-id="${id}"]`, { state: 'detached' });
  await shot(page, '08-deleted');
  await page.context().close();
});

test('thinking and tool-use blocks are shown apart from the text', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.url}/`);
  await page.click('summary');
  await page.check('#thinking');
  await page.fill('#tools', '[{"name":"get_weather","input_schema":{"type":"object"}}]');
  await page.selectOption('#tool-choice', 'any');
  await startFromForm(page, 'What is the weather in Lisbon today?');
  await page.waitForSelector('#job-badge.s-completed');
  await page.waitForSelector('.stop-reason');
  assert.match(await page.textContent('[data-block-type=thinking]'), /Thinking about: What is the weather in/);
  assert.match(await page.textContent('[data-block-type=tool_use]'), /get_weather/);
  const styles = await page.evaluate(() => ['thinking', 'tool_use'].map((t) => getComputedStyle(
    document.querySelector(`[data-block-type=${t}]`)).backgroundColor));
  assert.notEqual(styles[0], styles[1]);
  assert.match(await page.textContent('.stop-reason'), /tool_use/);
  await shot(page, '09-thinking-and-tool-use');
  await page.context().close();
});

test('a job that fails shows its error plainly', async () => {
  const bad = await startServer(['--model', 'broken=openai:http://127.0.0.1:9/v1']);
  try {
    const page = await newPage(browser);
    await page.goto(`${bad.url}/`);
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    await startFromForm(page, 'hello');
    await page.waitForSelector('#job-badge.s-error');
    await page.waitForSelector('.block-error');
    assert.match(await page.textContent('.block-error'), /^Error: .*127\.0\.0\.1:9/);
    assert.match(await page.textContent('dd[data-field="error"]'), /127\.0\.0\.1:9/);
    await shot(page, '10-job-error');
    await page.context().close();
  } finally {
    await bad.stop();
  }
});

test('with auth on: 401 is explained, the secret is typed once and kept', async () => {
  const secured = await startServer(['--auth-secret', 'Bearer sk-browser-1']);
  try {
    const page = await newPage(browser);
    await page.goto(`${secured.url}/`);
    await page.waitForSelector('#banner:not([hidden])');
    assert.match(await page.textContent('#banner-text'), /Not authenticated/);
    await shot(page, '11-auth-needed');
    await page.fill('#secret', 'Bearer sk-browser-1');
    await page.click('#auth-form button');
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    assert.ok(await page.isHidden('#banner'));
    const prompt = words(4);
    const id = await startFromForm(page, prompt);
    await page.waitForSelector('#job-badge.s-completed');
    await page.waitForSelector('.stop-reason');
    assert.equal(await pageText(page), prompt);
    // A new visit in the same browser keeps the secret.
    await page.goto(`${secured.url}/#job=${id}`);
    assert.equal(await page.inputValue('#secret'), 'Bearer sk-browser-1');
    await page.waitForSelector(`#jobs-list li[data-id="${id}"]`);
    await page.waitForSelector('#job-badge.s-completed');
    assert.equal(await pageText(page), prompt);
    await shot(page, '12-auth-ok');
    await page.context().close();
  } finally {
    await secured.stop();
  }
});

test('server down: the page says so, reconnects when it is back, and loses no event', async () => {
  const dataDir = freshDataDir();
  let s = await startServer(['--mock-token-delay-ms', '40', '--data-dir', dataDir]);
  const port = Number(new URL(s.url).port);
  const page = await newPage(browser);
  await page.goto(`${s.url}/`);
  const id = await startFromForm(page, words(300));
  await waitForText(page, 20);
  s.kill();  // mid-stream, as a crash would
  await page.waitForFunction(() => document.querySelector('#job-conn').textContent.includes('reconnecting'));
  await page.fill('#prompt', 'anyone there?');
  await page.click('#start');
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await page.textContent('#banner-text'), /Cannot reach the Spool server/);
  await shot(page, '13-server-down');
  // Back on the same port: the job was running, so it ended "interrupted by restart"; the page
  // resumes after the last event it had and shows that, with the text the log keeps.
  s = await startServer(['--mock-token-delay-ms', '40', '--data-dir', dataDir], { port });
  try {
    await page.waitForSelector('#job-badge.s-error');
    await page.waitForSelector('.block-error');
    assert.match(await page.textContent('.block-error'), /interrupted by restart/);
    assert.equal(await pageText(page), textOf(await serverEvents(s.url, id)));
    await page.click('#jobs-refresh');
    await page.waitForSelector('#banner', { state: 'hidden' });
    await shot(page, '14-server-back');
  } finally {
    await page.context().close();
    await s.stop();
  }
});

test('under a path prefix the page and its calls work', async () => {
  const prefixed = await startServer(['--path-prefix', '/spool']);
  try {
    const page = await newPage(browser);
    const res = await page.goto(`${prefixed.url}/spool`);  // redirected to /spool/
    assert.equal(res.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/spool/');
    const calls = [];
    page.on('request', (r) => calls.push(new URL(r.url()).pathname));
    const id = await startFromForm(page, 'prefixed hello');
    await page.waitForSelector('#job-badge.s-completed');
    await page.waitForSelector('.stop-reason');
    assert.equal(await pageText(page), 'prefixed hello');
    assert.ok(calls.includes(`/spool/v1/messages/async/${id}/stream`), calls.join(' '));
    await page.context().close();
  } finally {
    await prefixed.stop();
  }
});
