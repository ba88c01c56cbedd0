// Runs the example app (examples/browser-app/server.mjs) as its README says, and small helpers of
// the cross-origin tests.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const EXAMPLE = path.resolve(here, '../../examples/browser-app/server.mjs');

/** A port nobody listens on now (for an origin that must be known before its server starts). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Starts `node server.mjs`; resolves with {url, stop()} once it listens (10 s deadline). */
export function startExample({ port, spoolUrl, publicUrl, secret }) {
  const proc = spawn(process.execPath, [EXAMPLE], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', SPOOL_URL: spoolUrl,
      SPOOL_PUBLIC_URL: publicUrl, SPOOL_SECRET: secret },
  });
  process.on('exit', () => proc.kill('SIGKILL'));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`example did not start: ${out}`)); }, 10_000);
    const onData = (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], proc, stop: () => proc.kill('SIGTERM') });
      }
    };
    proc.stdout.setEncoding('utf8').on('data', onData);
    proc.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`example exited (${code}): ${out}`)); });
  });
}

/** The value of one spool_requests_total{…} series in /metrics (0 when absent). */
export async function metric(baseUrl, headers, labels) {
  const text = await (await fetch(`${baseUrl}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith(`spool_requests_total{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/**
 * A TCP proxy to `target` (host:port) on 127.0.0.1, whose connections can be cut: what a dropped
 * Wi-Fi or a restarted load balancer does to a page's stream. {port, cut(), close()}.
 */
export function cuttableProxy(target) {
  const [host, port] = [target.hostname, Number(target.port)];
  const open = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const pair = [client, upstream];
    open.add(pair);
    const end = () => { open.delete(pair); client.destroy(); upstream.destroy(); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port,
    /** Drops every connection open now; returns how many. */
    cut() {
      const n = open.size;
      for (const [c, u] of [...open]) { c.destroy(); u.destroy(); }
      open.clear();
      return n;
    },
    close() { this.cut(); server.close(); },
  })));
}
