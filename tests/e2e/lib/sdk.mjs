// Helpers shared by the third-party SDK suites (ai_sdk.test.mjs, langchain.test.mjs).
import { metricValue, waitUntil } from './http.mjs';

/**
 * Resolves or rejects as `promise` does, or rejects after `ms` naming `what`, so no await on an
 * SDK call can hang a test until the runner's own timeout.
 */
export async function within(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A fetch that records every JSON request body it sends (the exact request Spool receives),
 * for SDKs that take a custom fetch.
 */
export function recordingFetch() {
  const bodies = [];
  const f = async (url, init = {}) => {
    if (typeof init.body === 'string') bodies.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  return { fetch: f, bodies, last: () => bodies.at(-1) };
}

const STATUSES = ['pending', 'processing', 'completed', 'cancelled', 'error'];

/**
 * Waits until the server runs no job and holds no stream (a /v1/messages job is deleted when its
 * response ends, a cancelled one included), within timeoutMs.
 */
export async function waitIdle(c, timeoutMs = 2000) {
  await waitUntil(async () => {
    const m = await c.metrics();
    return metricValue(m, 'spool_active_jobs') === 0 &&
      STATUSES.every((st) => metricValue(m, 'spool_streams', `status="${st}"`) === 0);
  }, { what: 'no active job and no stream left', timeoutMs });
}

/** The number of jobs running now. */
export async function activeJobs(c) {
  return metricValue(await c.metrics(), 'spool_active_jobs');
}

/** The signature Spool puts on a thinking block (§3.2). */
export const SIGNATURE_RE = /^sig_[0-9a-f]{32}$/;
