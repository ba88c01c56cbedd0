// Starts the real spool binary on a free port and stops it again.
//
//   const srv = await startServer(['--mock-token-delay-ms', '5']);
//   ... srv.url ...
//   await srv.stop();   // SIGTERM, asserts exit code 0 within a few seconds
//
// The binary comes from env SPOOL_BIN, default ../../build/spool relative to tests/e2e.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const SPOOL_BIN = process.env.SPOOL_BIN
  ? path.resolve(process.env.SPOOL_BIN)
  : path.resolve(E2E_DIR, '../../build/spool');

const LISTEN_RE = /spool listening on (http:\/\/(\S+):(\d+))/;

/** Every server started by this process, so a crashed test file still cleans up. */
const live = new Set();
/** Data directories the harness made (removed at exit). */
const madeDirs = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const d of madeDirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * The memory of a running process from /proc/<pid>/status: {rssMb, peakMb} (VmRSS and VmHWM, the
 * highest RSS it ever had), or null where /proc has no such file.
 */
export function memoryOf(pid) {
  let status;
  try { status = fs.readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return null; }
  const mb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  return { rssMb: mb('VmRSS'), peakMb: mb('VmHWM') };
}

let sanitized = null;
/** True when SPOOL_BIN is built with AddressSanitizer, whose shadow memory and quarantine make RSS incomparable. */
export function isSanitized() {
  if (sanitized === null) {
    try { sanitized = fs.readFileSync(SPOOL_BIN).includes('__asan_init'); } catch { sanitized = false; }
  }
  return sanitized;
}

/** A fresh, empty data directory, removed when this test process exits. */
export function freshDataDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-e2e-'));
  madeDirs.add(d);
  return d;
}

/**
 * @param {string[]} args extra flags after `serve --host 127.0.0.1 --port 0`
 * @param {{startTimeoutMs?: number, env?: object, dataDir?: string, port?: number}} opts
 *   port: listen on this port (default 0: any free one)
 *   dataDir: the durable store's directory (default: a fresh one, unless args name one)
 */
export async function startServer(args = [], opts = {}) {
  if (!fs.existsSync(SPOOL_BIN)) {
    throw new Error(`spool binary not found at ${SPOOL_BIN} (set SPOOL_BIN)`);
  }
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  const dataDir = args.includes('--data-dir') ? null : (opts.dataDir ?? freshDataDir());
  const fullArgs = ['serve', '--host', '127.0.0.1', '--port', String(opts.port ?? 0),
    ...(args.includes('--log-level') ? [] : ['--log-level', 'warn']),
    ...(dataDir ? ['--data-dir', dataDir] : []), ...args];
  const proc = spawn(SPOOL_BIN, fullArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  live.add(proc);
  let stdout = '';
  let stderr = '';
  let exited = null; // {code, signal}
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(proc);
      resolve(exited);
    });
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  proc.stdout.setEncoding('utf8');

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`spool did not print its listening line within ${startTimeoutMs} ms\n` +
        `args: ${fullArgs.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, startTimeoutMs);
    const onData = (d) => {
      stdout += d;
      const m = LISTEN_RE.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', onData);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    exitPromise.then((ex) => {
      clearTimeout(timer);
      reject(new Error(`spool exited before listening (${JSON.stringify(ex)})\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
  // Keep draining stdout so the pipe never fills.
  proc.stdout.on('data', (d) => { stdout += d; if (stdout.length > 1_000_000) stdout = stdout.slice(-500_000); });

  const u = new URL(url);
  let stopped = false;
  const server = {
    url,
    host: u.hostname,
    port: Number(u.port),
    proc,
    args: fullArgs,
    dataDir,
    stderr: () => stderr,
    stdout: () => stdout,
    exited: () => exited,
    exitPromise,
    /** SIGTERM; resolves with the exit info; throws unless exit code 0 within timeoutMs. */
    async stop(timeoutMs = 5000) {
      if (stopped) return exited;
      stopped = true;
      if (exited) {
        throw new Error(`spool had already exited (${JSON.stringify(exited)}) before stop()\nstderr: ${stderr.slice(-4000)}`);
      }
      proc.kill('SIGTERM');
      let timer;
      const res = await Promise.race([
        exitPromise,
        new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); }),
      ]);
      clearTimeout(timer);
      if (res === null) {
        proc.kill('SIGKILL');
        await exitPromise;
        throw new Error(`spool did not exit within ${timeoutMs} ms of SIGTERM\nstderr: ${stderr.slice(-4000)}`);
      }
      if (res.code !== 0) {
        throw new Error(`spool exited with ${JSON.stringify(res)} after SIGTERM (expected code 0)\nstderr: ${stderr.slice(-4000)}`);
      }
      return res;
    },
    /** Force-kill without assertions (cleanup after failures). */
    kill() {
      stopped = true;
      if (!exited) proc.kill('SIGKILL');
    },
  };
  return server;
}

/**
 * A startServer whose servers are killed after each test (`afterEach` from node:test), so a
 * failed assertion leaves none running.
 */
export function serversPerTest(afterEach) {
  const started = [];
  afterEach(() => {
    for (const s of started.splice(0)) s.kill();
  });
  return async (args, opts) => {
    const s = await startServer(args, opts);
    started.push(s);
    return s;
  };
}
