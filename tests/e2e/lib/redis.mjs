// A real redis-server for the cluster tests: on a free loopback port, optionally with an
// append-only file fsynced on every write (so a restart keeps every acknowledged write).
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

function pong(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { buf += d; if (buf.includes('\r\n')) done(buf.startsWith('+PONG')); });
    sock.on('error', () => done(false));
    setTimeout(() => done(false), 500);
  });
}

/**
 * @param {{persist?: boolean}} opts persist: appendonly with fsync always
 * @returns {Promise<{url: string, port: number, kill: () => Promise<void>, start: () => Promise<void>, stop: () => Promise<void>}>}
 */
export async function startRedis({ persist = false } = {}) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-redis-'));
  let proc = null;
  const live = new Set();
  process.on('exit', () => { for (const p of live) p.kill('SIGKILL'); });
  const server = {
    url: `redis://127.0.0.1:${port}`,
    port,
    /** Starts redis-server (again) on the same port and data directory; resolves once it answers. */
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
        '--appendonly', persist ? 'yes' : 'no', '--appendfsync', 'always', '--logfile', ''],
      { stdio: 'ignore' });
      live.add(proc);
      const p = proc;
      p.on('exit', () => live.delete(p));
      for (let i = 0; i < 200; i++) {
        if (await pong(port)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`redis-server did not answer on port ${port}`);
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
