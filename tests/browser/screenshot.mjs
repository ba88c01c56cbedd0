// Takes the README's screenshot of the playground: node screenshot.mjs [OUT.png]
// (default ../../docs/playground.png). Starts the real binary (SPOOL_BIN) with the mock engine.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../e2e/lib/harness.mjs';
import { launch, newPage, startFromForm } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, '../../docs/playground.png'));
const srv = await startServer(['--mock-token-delay-ms', '60']);
const browser = await launch();
try {
  const page = await newPage(browser);
  await page.goto(`${srv.url}/`);
  for (const p of ['Summarise the release notes in three bullet points',
    'Translate "good morning" into Portuguese', 'Write a haiku about background jobs']) {
    await startFromForm(page, p);
    await page.waitForSelector('#job-badge.s-completed');
  }
  await page.click('summary');
  await page.check('#thinking');
  await page.fill('#system', 'You are a concise assistant.');
  await startFromForm(page, 'Explain why a background job with resumable streams is easier to operate than ' +
    'a long-lived request: clients can reconnect, watch from several places, and cancel when they like.');
  await page.waitForFunction(() => document.querySelector('[data-block-type=text] .block-body')?.textContent.length > 90);
  await page.click('summary');
  await page.setViewportSize({ width: 1280, height: 540 });
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await srv.stop();
}
