// Shared pieces of the browser tests: Debian's Chromium through playwright-core, screenshots as
// artifacts, and reading a job the way any other client would (to compare with the page; the SSE
// parsing is the e2e suite's, tests/e2e/lib/sse.mjs).
import { chromium } from 'playwright-core';
import { parseSSE } from '../e2e/lib/sse.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Where screenshots go (CI keeps this folder as an artifact). */
export const ARTIFACTS = process.env.SPOOL_BROWSER_ARTIFACTS ?? path.join(here, 'artifacts');
/** The browser: Debian's package, never a downloaded one. */
export const CHROMIUM = process.env.SPOOL_CHROMIUM ?? '/usr/bin/chromium';

/** Launches headless Chromium. */
export async function launch() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (scripts/deps.sh test)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** A new page in its own context (own storage), with page errors collected in `page.errors`. */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return page;
}

/** Writes a screenshot of `page` to ARTIFACTS/<name>.png. */
export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The job's events, read from the server like any client (frames as parseSSE gives them). */
export async function serverEvents(baseUrl, id, headers = {}) {
  const res = await fetch(`${baseUrl}/v1/messages/async/${id}/stream`, { headers });
  if (res.status !== 200) throw new Error(`stream ${id}: HTTP ${res.status}`);
  return parseSSE(await res.text());
}

/** The status of a job as the server reports it (null when 404). */
export async function serverStatus(baseUrl, id, headers = {}) {
  const res = await fetch(`${baseUrl}/v1/messages/async/${id}/status`, { headers });
  if (res.status === 404) return null;
  return res.json();
}

/** Waits until the page's answer text is longer than `n` characters. */
export function waitForText(page, n = 0) {
  return page.waitForFunction((min) => document.querySelector('[data-block-type=text] .block-body')?.textContent.length > min, n);
}

/** The text the page shows for the job's answer. */
export function pageText(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-block-type=text] .block-body')]
    .map((e) => e.textContent).join(''));
}

/** Starts a job from the form with `prompt`; returns its id once the page shows that job. */
export async function startFromForm(page, prompt) {
  const before = await page.evaluate(() => location.hash);
  await page.fill('#prompt', prompt);
  await page.click('#start');
  await page.waitForFunction((old) => location.hash.startsWith('#job=') && location.hash !== old, before);
  const id = await page.evaluate(() => decodeURIComponent(location.hash.slice('#job='.length)));
  await page.waitForFunction((want) => document.querySelector('#job-id')?.textContent === want, id);
  return id;
}

/** `n` words, numbered so that every part of the text is distinct. */
export function words(n) {
  return Array.from({ length: n }, (_, i) => `word${i + 1}`).join(' ');
}
