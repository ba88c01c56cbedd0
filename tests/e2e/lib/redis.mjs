// A real redis-server for the cluster tests: on a free loopback port, optionally with an
// append-only file fsynced on every write (so a restart keeps every acknowledged write).
// For the chaos test: a large junk AOF appended while Redis is down (writeJunkAof + appendToAof),
// so that the next start spends a while answering -LOADING; start({loaded: false}) returns as
// soon as Redis accepts connections and waitLoaded() measures how long it answered -LOADING.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * Why redis-server cannot run here, or false (a `skip` option for node:test). With
 * SPOOL_REQUIRE_REDIS=1 (scripts/test.sh) a missing redis-server fails the run instead.
 */
export const redisMissing = (() => {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && fs.existsSync(path.join(dir, 'redis-server'))) return false;
  }
  const why = 'redis-server is not installed (scripts/deps.sh test installs it)';
  if (process.env.SPOOL_REQUIRE_REDIS === '1') throw new Error(`SPOOL_REQUIRE_REDIS=1 but ${why}`);
  return why;
})();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The first reply line to PING ('+PONG', '-LOADING …'), or null when nothing answers within 500 ms. */
function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    let timer = null;
    const done = (reply) => { clearTimeout(timer); sock.destroy(); resolve(reply); };
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { buf += d; const i = buf.indexOf('\r\n'); if (i >= 0) done(buf.slice(0, i)); });
    sock.on('error', () => done(null));
    timer = setTimeout(() => done(null), 500);
  });
}

/**
 * Writes (appends to) `file` a RESP command stream that SETs `keys` junk keys of `valueBytes`
 * bytes in database `db`, ending with SELECT 0: appended to an AOF, it makes loading take a while
 * (about 2 s per million 100-byte keys here) without touching the keys of database 0.
 * @returns {number} the file's size in bytes
 */
export function writeJunkAof(file, { keys = 1_000_000, valueBytes = 100, db = 15 } = {}) {
  const fd = fs.openSync(file, 'a');
  try {
    const dbs = String(db);
    fs.writeSync(fd, `*2\r\n$6\r\nSELECT\r\n$${dbs.length}\r\n${dbs}\r\n`);
    const value = 'j'.repeat(valueBytes);
    const per = 10_000;
    for (let i = 0; i < keys; i += per) {
      let chunk = '';
      for (let j = i; j < Math.min(keys, i + per); j++) {
        const k = `junk:${j}`;
        chunk += `*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${valueBytes}\r\n${value}\r\n`;
      }
      fs.writeSync(fd, chunk);
    }
    fs.writeSync(fd, '*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n');
  } finally {
    fs.closeSync(fd);
  }
  return fs.statSync(file).size;
}

/**
 * @param {{persist?: boolean, args?: string[]}} opts persist: appendonly with fsync always;
 *   args: further redis-server arguments
 * @returns {Promise<{url: string, port: number, dir: string, kill: () => Promise<void>,
 *   start: (o?: {loaded?: boolean, timeoutMs?: number}) => Promise<object>,
 *   waitLoaded: (o?: {timeoutMs?: number}) => Promise<object>,
 *   appendToAof: (file: string) => number, command: (...words: string[]) => Promise<string>,
 *   stop: () => Promise<void>}>}
 */
export async function startRedis({ persist = false, args = [] } = {}) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-redis-'));
  let proc = null;
  const live = new Set();
  process.on('exit', () => { for (const p of live) p.kill('SIGKILL'); });
  const server = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    /**
     * Starts redis-server (again) on the same port and data directory. By default resolves once it
     * answers PING with PONG (data loaded); with loaded: false, as soon as it answers anything
     * (-LOADING included). Resolves with {acceptedAt, readyAt, loadingMs} (Date.now() times;
     * readyAt null when not waited for).
     */
    async start({ loaded = true, timeoutMs = 5000 } = {}) {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
        '--appendonly', persist ? 'yes' : 'no', '--appendfsync', 'always', '--logfile', '', ...args],
      { stdio: 'ignore' });
      live.add(proc);
      const p = proc;
      p.on('exit', () => live.delete(p));
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (p.exitCode !== null || p.signalCode !== null) throw new Error(`redis-server exited (${p.exitCode ?? p.signalCode}) at start`);
        const reply = await ping(port);
        if (reply !== null && (!loaded || reply === '+PONG')) {
          return { acceptedAt: Date.now(), readyAt: reply === '+PONG' ? Date.now() : null, loadingMs: null };
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`redis-server did not answer${loaded ? ' PONG' : ''} on port ${port} within ${timeoutMs} ms`);
    },
    /**
     * Waits until Redis answers PING with PONG (polling every 20 ms). Resolves with
     * {readyAt, loadingMs, loadingReplies}: loadingMs from the first to the last -LOADING reply seen.
     */
    async waitLoaded({ timeoutMs = 60_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      let firstLoading = null;
      let lastLoading = null;
      let loadingReplies = 0;
      while (Date.now() < deadline) {
        const reply = await ping(port);
        if (reply === '+PONG') {
          return { readyAt: Date.now(), loadingMs: firstLoading === null ? 0 : lastLoading - firstLoading, loadingReplies };
        }
        if (reply?.startsWith('-LOADING')) {
          loadingReplies += 1;
          lastLoading = Date.now();
          if (firstLoading === null) firstLoading = lastLoading;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`redis-server on port ${port} still not loaded after ${timeoutMs} ms`);
    },
    /**
     * Appends the bytes of `file` to the append-only file Redis replays last (the last file of the
     * manifest, Redis 7; appendonly.aof before). Only while Redis is not running. Returns the size.
     */
    appendToAof(file) {
      if (proc && proc.exitCode === null && proc.signalCode === null) throw new Error('appendToAof while redis-server runs');
      let target = path.join(dir, 'appendonly.aof');
      const aofDir = path.join(dir, 'appendonlydir');
      if (fs.existsSync(aofDir)) {
        const manifest = fs.readdirSync(aofDir).find((f) => f.endsWith('.manifest'));
        const files = fs.readFileSync(path.join(aofDir, manifest), 'utf8').split('\n')
          .map((l) => /^file (\S+) seq \d+ type ([bhi])/.exec(l)).filter(Boolean);
        const last = files.filter((m) => m[2] === 'i').at(-1) ?? files.at(-1);
        target = path.join(aofDir, last[1]);
      }
      const out = fs.openSync(target, 'a');
      try {
        const buf = Buffer.alloc(4 << 20);
        const src = fs.openSync(file, 'r');
        try {
          for (;;) {
            const n = fs.readSync(src, buf, 0, buf.length, null);
            if (n === 0) break;
            fs.writeSync(out, buf, 0, n);
          }
        } finally {
          fs.closeSync(src);
        }
      } finally {
        fs.closeSync(out);
      }
      return fs.statSync(target).size;
    },
    /** Sends one command (inline, arguments without spaces); resolves with the first reply line. */
    command(...words) {
      return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        let buf = '';
        const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis ${words[0]}: no reply`)); }, 5000);
        sock.on('connect', () => sock.write(`${words.join(' ')}\r\n`));
        sock.on('data', (d) => {
          buf += d;
          const i = buf.indexOf('\r\n');
          if (i >= 0) { clearTimeout(timer); sock.destroy(); resolve(buf.slice(0, i)); }
        });
        sock.on('error', (e) => { clearTimeout(timer); reject(e); });
      });
    },
    /** SIGKILL (no goodbye to clients). */
    async kill() {
      if (!proc || proc.exitCode !== null) return;
      const p = proc;
      const gone = new Promise((r) => p.on('exit', r));
      p.kill('SIGKILL');
      await gone;
    },
    async stop() {
      await server.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
