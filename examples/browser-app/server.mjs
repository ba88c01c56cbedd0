// The backend of the example: serves the page and starts Spool jobs with the secret, which never
// reaches the browser. The browser then watches the job on Spool itself, with the read token.
// No dependencies: `node server.mjs` (Node 18+).
//
//   SPOOL_URL          where this backend reaches Spool (default http://127.0.0.1:8080)
//   SPOOL_PUBLIC_URL   where browsers reach Spool (default: SPOOL_URL)
//   SPOOL_SECRET       the whole Authorization header value Spool expects, e.g. "Bearer sk-local-123"
//   SPOOL_MODEL        the model to ask (default: Spool's default model)
//   HOST, PORT         where this backend listens (default 127.0.0.1:3000; PORT=0: any free port)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SPOOL_URL = (process.env.SPOOL_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const PUBLIC_URL = (process.env.SPOOL_PUBLIC_URL ?? SPOOL_URL).replace(/\/+$/, '');
const SECRET = process.env.SPOOL_SECRET ?? '';
const MODEL = process.env.SPOOL_MODEL;

// The page's files. The pages learn Spool's public address from a placeholder.
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/direct.html': ['direct.html', 'text/html; charset=utf-8'],
  '/watch.js': ['watch.js', 'text/javascript; charset=utf-8'],
};

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

async function readJson(req, limit = 64 * 1024) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new Error('request too large');
  }
  return JSON.parse(body);
}

// POST /api/ask {prompt} → {message_id, read_token, stream_url, status_url}.
// A real app would check its own user's session here before spending tokens on them.
async function ask(req, res) {
  let prompt;
  try {
    ({ prompt } = await readJson(req));
  } catch {
    return send(res, 400, { error: 'send JSON: {"prompt": "..."}' });
  }
  if (typeof prompt !== 'string' || !prompt.trim()) return send(res, 400, { error: 'prompt is empty' });

  let answer;
  try {
    const r = await fetch(`${SPOOL_URL}/v1/messages/async`, {
      method: 'POST',
      headers: { Authorization: SECRET, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        ...(MODEL ? { model: MODEL } : {}),
        max_tokens: 1024,
        messages: [{ role: 'user', content: prompt }],
      }),
    });
    answer = await r.json().catch(() => ({}));
    if (r.status !== 200) {
      const why = answer.error?.message ?? answer.detail ?? `HTTP ${r.status}`;
      return send(res, 502, { error: `Spool refused the job: ${typeof why === 'string' ? why : JSON.stringify(why)}` });
    }
  } catch (e) {
    return send(res, 502, { error: `Spool cannot be reached at ${SPOOL_URL}: ${e.cause?.code ?? e.cause?.errors?.[0]?.code ?? e.message}` });
  }
  if (!answer.read_token) {
    return send(res, 502, { error: 'Spool gave no read_token: start it with an auth secret (--auth-secret)' });
  }
  const { message_id: id, read_token: token } = answer;
  const job = `${PUBLIC_URL}/v1/messages/async/${encodeURIComponent(id)}`;
  const q = `?read_token=${encodeURIComponent(token)}`;
  send(res, 200, { message_id: id, read_token: token, stream_url: `${job}/stream${q}`, status_url: `${job}/status${q}` });
}

export function createServer() {
  return http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    if (pathname === '/api/ask' && req.method === 'POST') {
      ask(req, res).catch((e) => send(res, 500, { error: e.message }));
      return;
    }
    const file = FILES[pathname];
    if (file && (req.method === 'GET' || req.method === 'HEAD')) {
      const text = fs.readFileSync(path.join(here, file[0]), 'utf8').replaceAll('%SPOOL_PUBLIC_URL%', PUBLIC_URL);
      return send(res, 200, text, file[1]);
    }
    send(res, 404, { error: 'not found' });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!SECRET) console.warn('SPOOL_SECRET is not set: Spool answers read tokens only with auth on');
  const server = createServer();
  server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
    const { address, port } = server.address();
    console.log(`example listening on http://${address}:${port} (Spool: ${PUBLIC_URL})`);
  });
}
