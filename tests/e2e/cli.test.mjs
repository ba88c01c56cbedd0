// The command-line client in the spool binary (spool chat/start/watch/status/cancel/rm/ls)
// against real servers: output, resuming, Ctrl-C, exit codes and the progress line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { startServer, SPOOL_BIN } from './lib/harness.mjs';
import { client, chat, words, waitStatus, waitUntil, sleep } from './lib/http.mjs';

let fast; // 2 ms between tokens
let slow; // 40 ms between tokens: jobs that are still running when the test acts
before(async () => {
  [fast, slow] = await Promise.all([
    startServer(['--mock-token-delay-ms', '2']),
    startServer(['--mock-token-delay-ms', '40']),
  ]);
});
after(async () => { await Promise.all([fast.stop(), slow.stop()]); });

let seq = 0;
const newId = (p) => `cli-${p}-${process.pid}-${++seq}`;

/** The environment of a client run: no inherited SPOOL_* settings, then `env`. */
function cliEnv(env = {}) {
  const e = { ...process.env };
  for (const k of Object.keys(e)) if (k.startsWith('SPOOL_') && k !== 'SPOOL_BIN') delete e[k];
  delete e.LINES;
  return { ...e, ...env };
}

/** Starts `spool ARGS` with SPOOL_URL=url; stdin gets `input` (then EOF). */
function spawnCli(args, { url, env = {}, input = '' } = {}) {
  const proc = spawn(SPOOL_BIN, args, {
    env: cliEnv(url ? { SPOOL_URL: url, ...env } : env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stdin.on('error', () => {});
  proc.stdin.end(input);
  const done = new Promise((resolve) => {
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { proc, done, out: () => stdout, err: () => stderr };
}

/** Runs `spool ARGS` to the end; rejects after timeoutMs. */
async function run(args, opts = {}) {
  const c = spawnCli(args, opts);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      c.proc.kill('SIGKILL');
      reject(new Error(`spool ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 15000} ms\n` +
        `stdout: ${c.out()}\nstderr: ${c.err()}`));
    }, opts.timeoutMs ?? 15000);
  });
  try {
    return await Promise.race([c.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port nothing listens on. */
async function closedPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A TCP proxy in front of `target` (a server url). cut() destroys every open connection once;
 * requests() are the request heads it forwarded; close() stops accepting.
 */
async function startProxy(target) {
  const t = new URL(target);
  const conns = new Set();
  const heads = [];
  let onResponseBytes = null;
  const server = net.createServer((down) => {
    const up = net.connect({ host: t.hostname, port: Number(t.port) });
    const pair = { down, up };
    conns.add(pair);
    let head = '';
    down.on('data', (d) => {
      if (!head.includes('\r\n\r\n')) {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) heads.push(head.split('\r\n\r\n')[0]);
      }
      up.write(d);
    });
    up.on('data', (d) => {
      down.write(d);
      if (onResponseBytes) onResponseBytes(pair, d);
    });
    const end = () => { conns.delete(pair); down.destroy(); up.destroy(); };
    down.on('close', end);
    up.on('close', end);
    down.on('error', end);
    up.on('error', end);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    requests: () => heads,
    /** Calls fn(pair, bytes) for every response chunk forwarded. */
    onResponse(fn) { onResponseBytes = fn; },
    cut() { for (const { down, up } of conns) { down.destroy(); up.destroy(); } conns.clear(); },
    async close() {
      this.cut();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Runs the shell `command` under a pseudo-terminal (util-linux script); everything it printed. */
async function runScript(command, env = {}) {
  const proc = spawn('script', ['-qfec', command, '/dev/null'], { env: cliEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  proc.stdin.end();
  const code = await new Promise((resolve) => proc.on('close', resolve));
  return { code, out };
}

const shellQuote = (s) => `'${s.replace(/'/g, "'\\''")}'`;

// ------------------------------------------------------------------------------------------------
// chat

test('chat prints exactly the reply: the prompt from the arguments, joined with spaces', async () => {
  const r = await run(['chat', 'hello', 'there,', 'world!'], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello there, world!', 'the mock echoes the prompt; no newline added when piped');
  assert.equal(r.stderr, '');
});

test('chat reads the prompt from standard input when no arguments are given', async () => {
  const input = 'line one\n  indented   line two\nlast line\n';
  const r = await run(['chat'], { url: fast.url, input });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, input);
});

test('chat options reach the request: --max-tokens, --stop, --system, --model, --id, --thinking', async () => {
  let r = await run(['chat', '--max-tokens', '2', 'one', 'two', 'three', 'four'], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'one two ');

  r = await run(['chat', '--stop', 'three', '--stop', 'zzz', 'one two three four'], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'one two ');

  const id = newId('opts');
  r = await run(['chat', '-m', 'default', '-s', 'be brief', '--temperature', '0.5', '--top-p', '0.9', '--id', id,
    'a b'], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'a b');
  const st = (await client(fast.url).status(id)).json;
  assert.equal(st.status, 'completed');
  assert.equal(st.metadata.usage.input_tokens, 4, 'prompt and system words');

  r = await run(['chat', '--thinking', '1024', 'think about this'], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'think about this');
  assert.equal(r.stderr, 'Thinking about: think about this\n', 'thinking goes to stderr, plain when piped');
});

test('chat --json prints every event as one JSON line', async () => {
  const r = await run(['chat', '--json', 'x y z'], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const events = lines.map((l) => JSON.parse(l));
  assert.equal(events[0].type, 'message_start');
  assert.deepEqual(events.at(-1), { type: 'message_stop' });
  const text = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta.text).join('');
  assert.equal(text, 'x y z');
  assert.ok(r.stdout.endsWith('\n'));
});

// ------------------------------------------------------------------------------------------------
// start, status, ls, cancel, rm

test('start prints the id; status, ls, cancel and rm work on it', async () => {
  const c = client(slow.url);
  const id = newId('life');
  let r = await run(['start', '--id', id, words(300)], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${id}\n`);
  await waitStatus(c, id, ['processing']);

  r = await run(['status', id], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^id: ${id}\nstatus: processing\nmodel: mock\ncreated: \\S+Z\n`));
  assert.match(r.stdout, /\nusage: 300 input tokens, \d+ output tokens\n/);
  assert.match(r.stdout, /\nevents: \d+\nobservers: 0\n$/);

  r = await run(['status', '--json', id], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  const st = JSON.parse(r.stdout);
  assert.equal(st.message_id, id);
  assert.equal(st.status, 'processing');

  r = await run(['ls', '--status', 'processing'], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  const [header, ...rows] = r.stdout.trimEnd().split('\n');
  assert.match(header, /^ID\s+STATUS\s+MODEL\s+CREATED\s+OUT TOKENS$/);
  const row = rows.find((l) => l.startsWith(id));
  assert.ok(row, r.stdout);
  assert.match(row, new RegExp(`^${id}\\s+processing\\s+mock\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+\\d+$`));

  r = await run(['cancel', id], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `cancelled ${id}\n`);
  assert.equal((await c.status(id)).json.status, 'cancelled');

  r = await run(['ls', '--json', '--status', 'cancelled', '--limit', '1000'], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  const listed = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.ok(listed.some((s) => s.message_id === id && s.status === 'cancelled'));

  r = await run(['rm', id], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `deleted ${id}\n`);
  assert.equal((await c.status(id)).status, 404);

  r = await run(['start', '--json', 'hi'], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout);
  assert.equal(body.status, 'pending');
  assert.equal(typeof body.message_id, 'string');
});

test('ls --all follows next_cursor through every page', async () => {
  const srv = await startServer(['--mock-token-delay-ms', '1']);
  try {
    const ids = [];
    for (let i = 0; i < 5; i += 1) {
      const r = await run(['start', `job ${i}`], { url: srv.url });
      assert.equal(r.code, 0, r.stderr);
      ids.push(r.stdout.trim());
    }
    let r = await run(['ls', '--limit', '2', '--json'], { url: srv.url });
    assert.equal(r.stdout.trimEnd().split('\n').length, 2, 'one page without --all');
    r = await run(['ls', '--limit', '2', '--all', '--json'], { url: srv.url });
    assert.equal(r.code, 0, r.stderr);
    const seen = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).message_id);
    assert.deepEqual(seen, [...ids].reverse(), 'every job once, newest first');
    r = await run(['ls', '--limit', '2', '--all'], { url: srv.url });
    assert.equal(r.stdout.trimEnd().split('\n').length, 6, 'header and five rows');
  } finally {
    await srv.stop();
  }
});

// ------------------------------------------------------------------------------------------------
// watch

test('watch prints a finished job and a running one exactly once', async () => {
  const c = client(fast.url);
  const done = newId('done');
  assert.equal((await c.start(chat('all of it, already'), done)).status, 200);
  await waitStatus(c, done);
  let r = await run(['watch', done], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'all of it, already');

  const running = newId('running');
  const prompt = words(60);
  assert.equal((await client(slow.url).start(chat(prompt), running)).status, 200);
  r = await run(['watch', running], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, prompt);

  r = await run(['watch', '--from', '4', done], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'it, already', 'after event 4: message_start, block start and two deltas skipped');

  r = await run(['watch', '--from', '1000', done], { url: fast.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', 'a resume past the end of a finished stream is 204: done');
});

test('watch resumes through a dropped connection with Last-Event-ID, printing every token exactly once', async () => {
  const proxy = await startProxy(slow.url);
  try {
    const id = newId('resume');
    const prompt = words(50);
    assert.equal((await client(slow.url).start(chat(prompt), id)).status, 200);
    let cuts = 0;
    let seenStream = 0;
    proxy.onResponse((pair, bytes) => {
      // Cut the first two stream connections after a few deltas have gone through.
      if (!bytes.toString().includes('content_block_delta')) return;
      seenStream += 1;
      if (cuts < 2 && seenStream >= 3) {
        cuts += 1;
        seenStream = 0;
        // The first cut is a reset (a read error for the client), the second a plain close.
        if (cuts === 1) pair.down.resetAndDestroy(); else pair.down.destroy();
        pair.up.destroy();
      }
    });
    const r = await run(['watch', id], { url: proxy.url });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cuts, 2);
    assert.equal(r.stdout, prompt, 'no token lost, none twice');
    const resumes = proxy.requests().filter((h) => /^last-event-id: \d+$/im.test(h));
    assert.equal(resumes.length, 2, proxy.requests().join('\n---\n'));
    assert.ok(proxy.requests().every((h) => h.startsWith(`GET /v1/messages/async/${id}/stream HTTP/1.1`)));
  } finally {
    await proxy.close();
  }
});

test('watch of a reused id resumes with the whole id (N.I); --from takes one; an old position is refused', async () => {
  const c = client(slow.url);
  const id = newId('reused');
  assert.equal((await c.start(chat('gone'), id)).status, 200);
  await waitStatus(c, id);
  assert.equal((await c.remove(id)).status, 200);
  const prompt = words(40);
  assert.equal((await c.start(chat(prompt), id)).status, 200);
  const proxy = await startProxy(slow.url);
  try {
    let cut = false;
    let seen = 0;
    proxy.onResponse((pair, bytes) => {
      if (cut || !bytes.toString().includes('content_block_delta')) return;
      seen += 1;
      if (seen >= 3) {
        cut = true;
        pair.down.destroy();
        pair.up.destroy();
      }
    });
    const r = await run(['watch', id], { url: proxy.url });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(cut);
    assert.equal(r.stdout, prompt, 'no token lost, none twice');
    const resumes = proxy.requests().filter((h) => /^last-event-id: \d+\.2$/im.test(h));
    assert.equal(resumes.length, 1, proxy.requests().join('\n---\n'));
  } finally {
    await proxy.close();
  }
  let r = await run(['watch', '--from', '4.2', id], { url: slow.url });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, prompt.split(' ').slice(2).join(' '), 'after event 4: two deltas skipped');
  r = await run(['watch', '--from', '4', id], { url: slow.url });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /incarnation 1 of stream .* now names incarnation 2/, r.stderr);
  r = await run(['watch', '--from', '4.x', id], { url: slow.url });
  assert.notEqual(r.code, 0);
});

test('watch gives up with exit 3 after --retry-for seconds without reaching the server', async () => {
  const proxy = await startProxy(slow.url);
  const id = newId('giveup');
  assert.equal((await client(slow.url).start(chat(words(200)), id)).status, 200);
  const w = spawnCli(['watch', '--retry-for', '1', id], { url: proxy.url });
  await waitUntil(() => w.out().length > 10, { what: 'some output' });
  await proxy.close();
  const t0 = Date.now();
  const r = await w.done;
  assert.equal(r.code, 3, r.stderr);
  assert.ok(Date.now() - t0 >= 900, 'it retried for about a second');
  assert.match(r.stderr, new RegExp(`^spool: gave up on ${id} after 1 s without reaching ${proxy.url}: .+\n$`));
  await client(slow.url).cancel(id);
});

/** `spool serve` on a given port (the harness always asks for a free one); resolves once it listens. */
async function serveOn(port, dataDir, args = []) {
  const proc = spawn(SPOOL_BIN, ['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir,
    '--log-level', 'warn', ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.resume();
  await new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => { out += d; if (out.includes('spool listening on')) resolve(); });
    proc.on('exit', (code) => reject(new Error(`spool serve exited with ${code}`)));
  });
  return proc;
}

test('watch resumes across a server restart on the same port and data directory', async () => {
  const first = await startServer(['--mock-token-delay-ms', '40']);
  const id = newId('restart');
  assert.equal((await client(first.url).start(chat(words(100)), id)).status, 200);
  const w = spawnCli(['watch', id], { url: first.url });
  let second;
  try {
    await waitUntil(() => w.out().length > 10, { what: 'some output' });
    first.kill();
    await first.exitPromise;
    await sleep(300); // the watch is now reconnecting to nothing
    second = await serveOn(first.port, first.dataDir);
    const r = await w.done;
    assert.equal(r.code, 1, 'the restart interrupted the job');
    assert.match(r.stderr, new RegExp(`^spool: ${id} failed: .*restart.*\n$`));
    assert.ok(words(100).startsWith(r.stdout), 'the text before the restart, once');
    assert.ok(r.stdout.length > 10);
  } finally {
    w.proc.kill('SIGKILL');
    if (second) {
      second.kill('SIGTERM');
      await new Promise((r) => second.on('exit', r));
    }
  }
});

// ------------------------------------------------------------------------------------------------
// Ctrl-C

test('Ctrl-C on chat cancels the job and exits 130', async () => {
  const id = newId('sigint');
  const ch = spawnCli(['chat', '--id', id, words(300)], { url: slow.url });
  await waitUntil(() => ch.out().length > 10, { what: 'some output' });
  ch.proc.kill('SIGINT');
  const r = await ch.done;
  assert.equal(r.code, 130, r.stderr);
  assert.equal(r.stderr, `spool: cancelled ${id}\n`);
  assert.ok(words(300).startsWith(r.stdout));
  assert.equal((await client(slow.url).status(id)).json.status, 'cancelled', 'cancelled before the exit');
});

test('Ctrl-C on watch stops watching but leaves the job running', async () => {
  const c = client(slow.url);
  const id = newId('watchint');
  assert.equal((await c.start(chat(words(300)), id)).status, 200);
  const w = spawnCli(['watch', id], { url: slow.url });
  await waitUntil(() => w.out().length > 10, { what: 'some output' });
  w.proc.kill('SIGINT');
  const r = await w.done;
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /^spool: stopped watching .* \(the job goes on\)\n$/);
  await sleep(100);
  assert.equal((await c.status(id)).json.status, 'processing');
  await c.cancel(id);
});

test('standard output closed (| head): chat cancels its job and exits 141; watch only stops', async () => {
  const c = client(slow.url);
  const id = newId('pipe');
  const ch = spawnCli(['chat', '--id', id, words(300)], { url: slow.url });
  await waitUntil(() => ch.out().length > 10, { what: 'some output' });
  ch.proc.stdout.destroy();  // the reader goes away, as head does after its lines
  const r = await ch.done;
  assert.equal(r.code, 141, r.stderr);
  assert.equal(r.stderr, `spool: standard output closed; cancelled ${id}\n`);
  assert.equal((await c.status(id)).json.status, 'cancelled', 'cancelled before the exit');

  const id2 = newId('pipewatch');
  assert.equal((await c.start(chat(words(300)), id2)).status, 200);
  const w = spawnCli(['watch', id2], { url: slow.url });
  await waitUntil(() => w.out().length > 10, { what: 'some output' });
  w.proc.stdout.destroy();
  const rw = await w.done;
  assert.equal(rw.code, 141, rw.stderr);
  assert.match(rw.stderr, /^spool: standard output closed; stopped watching .* \(the job goes on\)\n$/);
  assert.equal((await c.status(id2)).json.status, 'processing');
  await c.cancel(id2);
});

test('a chat whose job someone else cancels exits 1', async () => {
  const id = newId('other');
  const ch = spawnCli(['chat', '--id', id, words(300)], { url: slow.url });
  await waitUntil(() => ch.out().length > 10, { what: 'some output' });
  assert.equal((await client(slow.url).cancel(id)).status, 200);
  const r = await ch.done;
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `spool: ${id} was cancelled\n`);
});

// ------------------------------------------------------------------------------------------------
// exit codes

test('exit 3: the server cannot be reached', async () => {
  const port = await closedPort();
  for (const args of [['status', 'x'], ['chat', 'hi'], ['ls'], ['watch', 'x']]) {
    const r = await run([...args, '--url', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 3, `${args}: ${r.stderr}`);
    assert.equal(r.stderr, `spool: cannot reach http://127.0.0.1:${port}: connection refused\n`);
  }
});

test('exit 4: not authenticated; --auth-secret and SPOOL_AUTH_SECRET send the header', async () => {
  const srv = await startServer(['--auth-secret', 'Bearer sk-cli-1']);
  try {
    let r = await run(['ls'], { url: srv.url });
    assert.equal(r.code, 4);
    assert.equal(r.stderr, 'spool: not authenticated: set --auth-secret or SPOOL_AUTH_SECRET\n');
    r = await run(['ls', '--auth-secret', 'Bearer wrong'], { url: srv.url });
    assert.equal(r.code, 4);
    assert.match(r.stderr, /^spool: not authenticated: the server refused the secret/);
    r = await run(['chat', '--auth-secret', 'Bearer sk-cli-1', 'let me in'], { url: srv.url });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'let me in');
    r = await run(['chat', 'env works'], { url: srv.url, env: { SPOOL_AUTH_SECRET: 'Bearer sk-cli-1' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'env works');
  } finally {
    await srv.stop();
  }
});

test('exit 5: unknown id, or no Spool API at --url', async () => {
  const id = newId('missing');
  for (const cmd of ['status', 'cancel', 'rm', 'watch']) {
    const r = await run([cmd, id], { url: fast.url });
    assert.equal(r.code, 5, `${cmd}: ${r.stderr}`);
    assert.equal(r.stderr, `spool: stream ${id} not found\n`);
  }
  const r = await run(['ls', '--url', `${fast.url}/nowhere`]);
  assert.equal(r.code, 5, r.stderr);
  assert.equal(r.stderr, `spool: not found: no Spool API at ${fast.url}/nowhere (check --url)\n`);
});

test('--url may carry the server path prefix', async () => {
  const srv = await startServer(['--path-prefix', '/spool', '--mock-token-delay-ms', '1']);
  try {
    const r = await run(['chat', 'behind a prefix'], { url: `${srv.url}/spool/` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'behind a prefix');
  } finally {
    await srv.stop();
  }
});

test('exit 6: any other refusal, with the server explanation and status', async () => {
  let r = await run(['start', '--id', 'has space', 'hi'], { url: fast.url });
  assert.equal(r.code, 6);
  assert.match(r.stderr, /^spool: the server refused the request \(HTTP 400\): .+\n$/);

  r = await run(['chat', '--temperature', '2', 'hi'], { url: fast.url });
  assert.equal(r.code, 6);
  assert.match(r.stderr, /^spool: the server refused the request \(HTTP 400\): .*temperature.*\n$/);

  const id = newId('dup');
  assert.equal((await run(['start', '--id', id, 'hi'], { url: fast.url })).code, 0);
  r = await run(['start', '--id', id, 'hi'], { url: fast.url });
  assert.equal(r.code, 6);
  assert.equal(r.stderr, 'spool: the server refused the request (HTTP 400): Stream with this message_id already exists\n');

  r = await run(['ls', '--status', 'finished'], { url: fast.url });
  assert.equal(r.code, 6);
});

test('exit 1: the job ends in error (chat and watch say why)', async () => {
  const port = await closedPort();
  const srv = await startServer(['--model', `bad=openai:http://127.0.0.1:${port}`]);
  try {
    const id = newId('bad');
    let r = await run(['chat', '--id', id, 'hi'], { url: srv.url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^spool: ${id} failed: .*connection refused.*\n$`));
    r = await run(['watch', id], { url: srv.url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /failed: .*connection refused/);
    r = await run(['status', id], { url: srv.url });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /\nstatus: error\n[\s\S]*\nerror: .*connection refused.*\n/);
  } finally {
    await srv.stop();
  }
});

test('exit 2: usage errors', async () => {
  for (const args of [['chat', '--max-tokens', 'many', 'hi'], ['watch'], ['status'], ['bogus'], ['ls', '--limit', '0'],
    ['chat', '--url', 'ftp://x', 'hi'], ['ls', '--nope'], []]) {
    const r = await run(args, { url: fast.url });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^spool: /, `${args.join(' ')}: ${r.stderr}`);
  }
  const r = await run(['chat'], { url: fast.url, input: '' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /prompt is empty/);
});

test('help lists the subcommands and the exit codes', async () => {
  let r = await run(['--help']);
  assert.equal(r.code, 0);
  for (const s of ['chat', 'start', 'watch', 'status', 'cancel', 'rm', 'ls', 'serve', 'Exit codes:', '130']) {
    assert.ok(r.stdout.includes(s), `${s} in:\n${r.stdout}`);
  }
  r = await run(['watch', '--help']);
  assert.equal(r.code, 0);
  for (const s of ['--retry-for', '--from', '--url', 'SPOOL_URL', '--auth-secret', 'SPOOL_AUTH_SECRET', 'Exit codes:']) {
    assert.ok(r.stdout.includes(s), `${s} in:\n${r.stdout}`);
  }
});

// ------------------------------------------------------------------------------------------------
// the progress line

test('progress line: a scroll region on a terminal, a \\r line with stdout redirected, nothing when piped', async () => {
  const env = { SPOOL_URL: slow.url };
  const cmd = `${shellQuote(SPOOL_BIN)} chat one two three four five six seven eight nine ten`;
  let r = await runScript(cmd, env);
  assert.equal(r.code, 0, r.out);
  assert.ok(r.out.includes('tok/s'), r.out);
  assert.match(r.out, /\x1b7\x1b\[1;\d+r\x1b8/, 'sets a scroll region');
  assert.match(r.out, /\x1b\[r/, 'and resets it');
  assert.ok(r.out.replace(/\x1b7.*?\x1b8/g, '').includes('one two three four five six seven eight nine ten\r\n'),
    'the text, with a final newline on a terminal');

  r = await runScript(`${cmd} > /dev/null`, env);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /\r\d+ tokens · \d+\.\d tok\/s · \d+\.\d s\x1b\[K/);
  assert.ok(r.out.endsWith('\r\x1b[K'), 'the line is removed at the end');

  r = await runScript(`${cmd} --quiet`, env);
  assert.ok(!r.out.includes('tok/s'), '--quiet');

  const piped = await run(['chat', 'one two three four five six'], { url: slow.url });
  assert.equal(piped.code, 0);
  assert.ok(!piped.stdout.includes('\x1b') && !piped.stderr.includes('\x1b'), 'no escape sequences when piped');
  assert.equal(piped.stderr, '');
});
