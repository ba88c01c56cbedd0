// llama.cpp parts for the end-to-end tests: the tiny random-weight model (make_tiny_gguf, built
// beside spool) and llama.cpp's own `llama-server` from the same source bundle
// (scripts/build-llama-tools.sh), started on loopback as a real upstream.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SPOOL_BIN } from './harness.mjs';

const buildDir = path.dirname(SPOOL_BIN);
const maker = path.join(buildDir, 'make_tiny_gguf');

/** The llama.cpp directory of the build (cmake/llama.cmake's SPOOL_LLAMA_DIR; build trees may share one). */
function llamaDir() {
  try {
    const cache = fs.readFileSync(path.join(buildDir, 'CMakeCache.txt'), 'utf8');
    const m = /^SPOOL_LLAMA_DIR:PATH=(.*)$/m.exec(cache);
    if (m) return m[1].trim();
  } catch { /* no cache: not a CMake build tree */ }
  return path.join(buildDir, '_deps/llama');
}
const vocab = path.join(llamaDir(), 'src/models/ggml-vocab-phi-3.gguf');
export const LLAMA_SERVER_BIN = process.env.SPOOL_LLAMA_SERVER
  ? path.resolve(process.env.SPOOL_LLAMA_SERVER)
  : path.join(llamaDir(), 'build/bin/llama-server');

// With SPOOL_REQUIRE_LLAMA=1 (scripts/test.sh) a missing part fails the run instead of skipping.
function missing(why) {
  if (why && process.env.SPOOL_REQUIRE_LLAMA === '1') throw new Error(`SPOOL_REQUIRE_LLAMA=1 but ${why}`);
  return why;
}

/** Why the tiny model cannot be made here, or false when it can (a `skip` option for node:test). */
export const tinyModelMissing = missing(fs.existsSync(maker) && fs.existsSync(vocab) ? false
  : `built without the llama engine (no ${maker} or ${vocab})`);

/** Why llama-server cannot run here, or false when it can. */
export const llamaServerMissing = tinyModelMissing || missing(fs.existsSync(LLAMA_SERVER_BIN) ? false
  : `no llama-server at ${LLAMA_SERVER_BIN} (scripts/build-llama-tools.sh)`);

/**
 * Writes the tiny random-weight GGUF to `file` (same shape options ⇒ same bytes).
 * @param {{embd?: number, layers?: number, ff?: number, ctx?: number, seed?: number}} shape
 */
export function makeTinyModel(file, shape = {}) {
  const args = ['--vocab', vocab, '--out', file];
  for (const [k, v] of Object.entries(shape)) args.push(`--${k}`, String(v));
  execFileSync(maker, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return file;
}

const LISTEN_RE = /listening on (http:\/\/127\.0\.0\.1:(\d+))/;

/**
 * Starts llama-server on a free loopback port serving `model`; resolves once /health is 200.
 * @param {string} model
 * @param {string[]} args extra llama-server flags (e.g. ['-np', '2', '-c', '4096', '-t', '1'])
 * @returns {Promise<{url: string, proc: import('node:child_process').ChildProcess, log: () => string, stop: () => Promise<void>}>}
 */
export async function startLlamaServer(model, args = [], { startTimeoutMs = 30_000 } = {}) {
  const proc = spawn(LLAMA_SERVER_BIN, ['-m', model, '--host', '127.0.0.1', '--port', '0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  process.on('exit', () => proc.kill('SIGKILL'));
  let log = '';
  const append = (d) => { log += d; if (log.length > 1_000_000) log = log.slice(-500_000); };
  proc.stdout.setEncoding('utf8').on('data', append);
  proc.stderr.setEncoding('utf8').on('data', append);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + startTimeoutMs;
  const fail = (why) => { proc.kill('SIGKILL'); throw new Error(`llama-server ${why}\n${log.slice(-4000)}`); };
  let url = null;
  let gone = null;
  exited.then((e) => { gone = e; });
  while (Date.now() < deadline) {
    if (gone) fail(`exited before it was ready (${JSON.stringify(gone)})`);
    url ??= LISTEN_RE.exec(log)?.[1] ?? null;
    if (url) {
      const ok = await fetch(`${url}/health`).then((r) => r.status === 200, () => false);
      if (ok) {
        return {
          url,
          proc,
          log: () => log,
          async stop() { proc.kill('SIGTERM'); await exited; },
        };
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return fail(`was not ready within ${startTimeoutMs} ms`);
}
