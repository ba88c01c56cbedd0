// The chaos test's load and its bookkeeping: jobs started at a steady rate on random instances,
// each watched by observers that resume with Last-Event-ID on any failure (connection error, 503,
// 404, a close before the terminal event) until a deadline, some cancelled from a random instance;
// every HTTP answer counted per instance (503s and how long they lasted, unreachable periods), and
// at the end every job checked against a late full read of its log and its final status.
//
//   const chaos = new Chaos({ tag: 'cl', errorRule });
//   chaos.add('A', url); ...
//   const load = chaos.startLoad({ rate: 10 });
//   ... faults ...
//   await load.stop();
//   await chaos.settle({ timeoutMs: 20_000 });   // observers end, jobs reach a terminal status
//   await chaos.verify();                         // late reads and every check; chaos.failures
//   chaos.figures()                               // the numbers to report
//
// Every wait has a deadline: observers give up at the settle deadline (a failure, never a hang),
// requests time out, and settle/verify are bounded.
import http from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { performance } from 'node:perf_hooks';
import { request, chat, sleep, ASYNC } from './http.mjs';

export const TERMINAL_STATUSES = ['completed', 'cancelled', 'error'];

/** A small seeded PRNG (mulberry32), so a failing run can be repeated with SPOOL_CHAOS_SEED. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Words the prompts are made of: multi-byte UTF-8 and JSON escapes, so byte comparisons and
// chunk-split decoding are exercised, not only ASCII.
const VOCAB = ['alpha', 'beta', 'naïve', 'Grüße', '漢字', 'emoji🙂', 'quote"d', 'back\\slash', 'tab<>&',
  'ünïcödé', 'zeta', 'x'];

function parseBlock(block) {
  let event = null;
  let id = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  if (data.length === 0) return null;
  return { event: event ?? 'message', id, data: data.join('\n') };
}

/**
 * One SSE connection. onFrame(frame) returns true at the terminal event; the server must then
 * close the connection (waited for up to 3 s). Resolves (never rejects) with
 * {status, body, outcome: 'closed'|'error'|'timeout'|'aborted'|'terminal-no-close', error, terminal}.
 */
function sseAttempt(url, headers, onFrame, { timeoutMs, active }) {
  return new Promise((resolve) => {
    const u = new URL(url);
    let status = null;
    let body = '';
    let terminal = false;
    let settled = false;
    let closeTimer = null;
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'GET',
      headers: { Accept: 'text/event-stream', ...headers }, agent: false,
    });
    const entry = { abort: () => { req.destroy(); done({ outcome: 'aborted' }); } };
    active.add(entry);
    const timer = setTimeout(() => { req.destroy(); done({ outcome: 'timeout' }); }, Math.max(1, timeoutMs));
    function done(r) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(closeTimer);
      active.delete(entry);
      resolve({ status, body, terminal, ...r });
    }
    req.on('error', (e) => done({ outcome: 'error', error: e.code ?? e.message }));
    req.on('response', (res) => {
      status = res.statusCode;
      res.on('error', (e) => done({ outcome: 'error', error: e.code ?? e.message }));
      res.on('close', () => done({ outcome: 'closed' }));
      if (status !== 200) {
        res.setEncoding('utf8');
        res.on('data', (d) => { if (body.length < 4000) body += d; });
        return;
      }
      const dec = new StringDecoder('utf8');
      let pending = '';
      res.on('data', (buf) => {
        if (terminal) return;
        pending += dec.write(buf);
        if (pending.includes('\r')) pending = pending.replace(/\r\n?/g, '\n');
        for (;;) {
          const i = pending.indexOf('\n\n');
          if (i < 0) break;
          const f = parseBlock(pending.slice(0, i));
          pending = pending.slice(i + 2);
          if (f && onFrame(f)) {
            terminal = true;
            closeTimer = setTimeout(() => { req.destroy(); done({ outcome: 'terminal-no-close' }); }, 3000);
            break;
          }
        }
      });
    });
    req.end();
  });
}

export const short = (s, n = 300) => (s && s.length > n ? `${s.slice(0, n)}…` : s);
export const errText = (r) => (r.status === null ? (r.error ?? 'no answer') : `${r.status} ${short(r.text ?? r.body ?? '', 400)}`);

export class Chaos {
  /**
   * @param {object} o
   * @param {string} o.tag short name of the phase (in ids and messages)
   * @param {number} o.seed PRNG seed
   * @param {(job, status) => string|null} o.errorRule why a job's `error` status is unexpected, or null
   * @param {number} [o.tolerateMs] clock tolerance when comparing completed_at with request times
   */
  constructor({ tag, seed, errorRule, tolerateMs = 250 }) {
    this.tag = tag;
    this.random = rng(seed);
    this.errorRule = errorRule;
    this.tolerateMs = tolerateMs;
    this.instances = new Map();  // name → {name, url, alive}
    this.jobs = new Map();       // id → job
    this.jobSeq = 0;
    this.failures = [];          // {kind, msg}
    this.tasks = new Set();      // pending promises (observers, cancels, starts)
    this.active = new Set();     // open SSE attempts (aborted at the give-up deadline)
    this.giveUpAt = Infinity;    // observers and retries stop here (set by settle)
    this.periods = new Map();    // instance → {open503, longest503, openDown, longestDown}
    this.count = { http: 0, http503: 0, connErrors: 0, timeouts: 0, false404: 0, statusPolls: 0 };
    this.events = [];            // timeline notes {t, what}
    this.t0 = Date.now();
  }

  note(what) { this.events.push({ t: Date.now() - this.t0, what }); }
  fail(kind, msg) { this.failures.push({ kind, msg }); }
  add(name, url) { this.instances.set(name, { name, url, alive: true }); }
  setUrl(name, url) { this.instances.get(name).url = url; }
  markDead(name) { this.instances.get(name).alive = false; }
  live() { return [...this.instances.values()].filter((i) => i.alive); }
  pick(exclude = null) {
    const l = this.live().filter((i) => i.name !== exclude);
    return l[Math.floor(this.random() * l.length)]?.name ?? [...this.instances.keys()][0];
  }
  url(name) { return this.instances.get(name).url; }
  track(p) {
    this.tasks.add(p);
    p.finally(() => this.tasks.delete(p));
    return p;
  }

  /** Records one answer (status null: no HTTP answer) of an instance for the 503/unreachable periods. */
  record(inst, status, t = performance.now()) {
    let p = this.periods.get(inst);
    if (!p) {
      p = { open503: null, longest503: 0, n503: 0, openDown: null, longestDown: 0 };
      this.periods.set(inst, p);
    }
    this.count.http += 1;
    if (status === 503) {
      this.count.http503 += 1;
      p.n503 += 1;
      if (p.open503 === null) p.open503 = t;
    } else if (status !== null && p.open503 !== null) {
      p.longest503 = Math.max(p.longest503, t - p.open503);
      p.open503 = null;
    }
    if (status === null) {
      if (p.openDown === null) p.openDown = t;
    } else if (p.openDown !== null) {
      p.longestDown = Math.max(p.longestDown, t - p.openDown);
      p.openDown = null;
    }
  }

  /** One request; never throws: {status (null when no answer), json, text, error, sentAt, answeredAt} (Date.now()). */
  async call(inst, method, path, opts = {}) {
    const sentAt = Date.now();
    try {
      const r = await request(this.url(inst), method, path, { timeoutMs: 15_000, ...opts });
      this.record(inst, r.status);
      return { status: r.status, json: r.json, text: r.text, sentAt, answeredAt: Date.now(), inst };
    } catch (e) {
      const timeout = /timed out/.test(e.message);
      if (timeout) this.count.timeouts += 1; else this.count.connErrors += 1;
      this.record(inst, null);
      return { status: null, error: timeout ? 'timeout' : (e.code ?? e.message), sentAt, answeredAt: Date.now(), inst };
    }
  }

  prompt(n = 30 + Math.floor(this.random() * 120)) {
    const w = [];
    for (let i = 0; i < n; i++) w.push(this.random() < 0.3 ? VOCAB[Math.floor(this.random() * VOCAB.length)] : `w${i}`);
    return w.join(' ');
  }

  /** Starts one job on `inst` (default: a random live instance) and its observers; `words`: prompt length. */
  async startJob({ inst = null, cancelProb = 0, observers = 2, source = 'load', words = undefined } = {}) {
    const id = `chaos-${this.tag}-${process.pid}-${++this.jobSeq}`;
    const name = inst ?? this.pick();
    const job = {
      id, prompt: this.prompt(words), inst: name, source, created: 'unknown', start: null,
      observers: [], late: null, cancels: [], final: null, checked: false,
    };
    this.jobs.set(id, job);
    const r = await this.call(name, 'POST', `${ASYNC}?message_id=${encodeURIComponent(id)}`, { json: chat(job.prompt) });
    job.start = r;
    if (r.status === 200) {
      job.created = true;
      if (r.json?.message_id !== id || r.json?.status !== 'pending') {
        this.fail('start-body', `start of ${id} on ${name} answered 200 with ${short(r.text)}`);
      }
      for (let k = 0; k < observers; k++) this.track(this.observe(job, `o${k}`));
      if (this.random() < cancelProb) {
        const delay = 100 + Math.floor(this.random() * 2500);
        this.track(sleep(delay).then(() => this.cancel(job, null, 'random')));
      }
    } else if (r.status === 503 || r.status === null) {
      job.created = 'unknown';  // refused, or no answer: it may or may not exist (checked at the end)
    } else {
      job.created = false;
      this.fail('start-status', `start of ${id} on ${name} answered ${errText(r)}`);
    }
    return job;
  }

  /**
   * An observer: reads the stream from a random live instance, and on any failure resumes on a
   * random live instance with Last-Event-ID = the last id it received, with a short backoff, until
   * it receives the terminal event or the give-up deadline passes.
   */
  async observe(job, label, { late = false } = {}) {
    const o = {
      label, late, data: new Map(), types: new Map(), maxId: 0, lastId: 0, terminal: null,
      delivered: 0, dups: 0, dupMismatch: 0, outOfOrder: 0, badIds: 0, attempts: 0, reconnects: 0,
      silence: 0, lastEventAt: performance.now(), outcomes: {}, lastFailure: null, gaveUp: null,
      instances: [], got404: 0, connectedTo: null,
    };
    if (late) job.late = o; else job.observers.push(o);
    const onFrame = (f) => {
      if (f.event === 'ping') return false;
      const now = performance.now();
      o.delivered += 1;
      const id = Number(f.id);
      if (!(f.id !== null && Number.isInteger(id) && id >= 1)) {
        o.badIds += 1;
        return false;
      }
      if (o.data.has(id)) {
        o.dups += 1;
        if (o.data.get(id) !== f.data) o.dupMismatch += 1;
      } else {
        if (id < o.maxId) o.outOfOrder += 1;
        o.data.set(id, f.data);
        o.types.set(id, f.event);
        o.silence = Math.max(o.silence, now - o.lastEventAt);
        o.lastEventAt = now;
      }
      o.maxId = Math.max(o.maxId, id);
      o.lastId = id;
      if (f.event === 'message_stop' || f.event === 'error') {
        o.terminal = { id, event: f.event, data: f.data, inst: o.connectedTo };
        return true;
      }
      return false;
    };
    let backoff = 0;
    while (!o.terminal) {
      const remaining = this.giveUpAt - Date.now();
      if (remaining <= 0) { o.gaveUp = 'the give-up deadline passed'; break; }
      const inst = this.pick();
      o.connectedTo = inst;
      o.instances.push(inst);
      const headers = o.lastId > 0 ? { 'Last-Event-ID': String(o.lastId) } : {};
      if (o.attempts > 0) o.reconnects += 1;
      o.attempts += 1;
      const r = await sseAttempt(`${this.url(inst)}${ASYNC}/${encodeURIComponent(job.id)}/stream`, headers, onFrame,
        { timeoutMs: Math.min(remaining, 300_000), active: this.active });
      this.record(inst, r.status);
      if (r.status === null) {
        if (r.outcome === 'timeout') this.count.timeouts += 1; else if (r.outcome !== 'aborted') this.count.connErrors += 1;
      }
      if (o.terminal) {
        if (r.outcome === 'terminal-no-close') {
          this.fail('no-close', `${job.id} ${label}: the connection to ${inst} stayed open 3 s after the terminal event`);
        }
        break;
      }
      const key = r.status === null ? r.outcome + (r.error ? `:${r.error}` : '') : (r.status === 200 ? 'closed-early' : String(r.status));
      o.outcomes[key] = (o.outcomes[key] ?? 0) + 1;
      o.lastFailure = { inst, status: r.status, outcome: r.outcome, error: r.error, body: short(r.body, 300), t: Date.now() - this.t0 };
      if (r.status === 404 && job.created === true) {
        o.got404 += 1;
        this.count.false404 += 1;
        this.fail('stream-404', `${job.id} ${label}: ${headers['Last-Event-ID'] ? `resume after id ${o.lastId}` : 'first read'} ` +
          `on ${inst} answered 404 for a job that exists (+${Date.now() - this.t0} ms): ${short(r.body, 200)}`);
      }
      if (r.status === 204) {
        this.fail('stream-204', `${job.id} ${label}: resume after id ${o.lastId} on ${inst} answered 204 (terminal, nothing after it) ` +
          'but no terminal event was ever received');
        o.gaveUp = '204 before a terminal event';
        break;
      }
      if (r.status !== null && ![200, 404, 503].includes(r.status)) {
        this.fail('stream-status', `${job.id} ${label}: ${inst} answered ${r.status}: ${short(r.body, 200)}`);
      }
      if (r.outcome === 'aborted') continue;  // the give-up deadline: checked at the top
      backoff = Math.min(500, backoff + 50);
      await sleep(Math.min(backoff / 2 + this.random() * backoff, Math.max(0, this.giveUpAt - Date.now())));
    }
    return o;
  }

  /** Cancels from `inst` (default: random), retrying on 503 and no answer until the give-up deadline. */
  async cancel(job, inst = null, kind = 'random', { retry = true } = {}) {
    const rec = { kind, attempts: [], final: null };
    job.cancels.push(rec);
    for (;;) {
      const name = inst && this.instances.get(inst).alive ? inst : this.pick();
      const r = await this.call(name, 'POST', `${ASYNC}/${encodeURIComponent(job.id)}/cancel`);
      rec.attempts.push({ inst: name, status: r.status, error: r.error, sentAt: r.sentAt, answeredAt: r.answeredAt });
      if (r.status !== 503 && r.status !== null) {
        rec.final = r;
        if (r.status === 404) {
          this.count.false404 += 1;
          this.fail('cancel-404', `cancel of ${job.id} (${kind}) on ${name} answered 404 for a job that exists: ${short(r.text, 200)}`);
        }
        return rec;
      }
      if (!retry || Date.now() > this.giveUpAt) return rec;
      inst = null;
      await sleep(100 + this.random() * 200);
    }
  }

  /** Polls the status of a random running job (a 404 there is the LOADING-read-as-absent bug too). */
  async pollSomeStatus() {
    const running = [...this.jobs.values()].filter((j) => j.created === true && !this.seenTerminal(j));
    if (running.length === 0) return;
    const job = running[Math.floor(this.random() * running.length)];
    const inst = this.pick();
    this.count.statusPolls += 1;
    const r = await this.call(inst, 'GET', `${ASYNC}/${encodeURIComponent(job.id)}/status`);
    if (r.status === 404) {
      this.count.false404 += 1;
      this.fail('status-404', `status of ${job.id} on ${inst} answered 404 for a job that exists (+${Date.now() - this.t0} ms): ${short(r.text, 200)}`);
    }
  }

  seenTerminal(job) { return job.observers.some((o) => o.terminal); }
  /** Jobs started on `inst` whose observers have not seen the end yet. */
  running(inst) {
    return [...this.jobs.values()].filter((j) => j.created === true && j.inst === inst && !this.seenTerminal(j)
      && j.observers.some((o) => o.data?.size > 1));
  }

  /** Starts `rate` jobs a second on random live instances until stop(); pause()/resume() in between. */
  startLoad({ rate = 10, cancelProb = 0.15 } = {}) {
    let stopped = false;
    let paused = false;
    const interval = 1000 / rate;
    const loop = (async () => {
      let next = performance.now();
      while (!stopped) {
        if (!paused) {
          this.track(this.startJob({ cancelProb }));
          if (this.random() < 0.3) this.track(this.pollSomeStatus());
        }
        next += interval;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait); else next = performance.now();
      }
    })();
    return {
      pause: () => { paused = true; },
      resume: () => { paused = false; },
      stop: async () => { stopped = true; await loop; },
    };
  }

  /**
   * With the load paused: resolves true once nothing is in flight any more (every start answered,
   * every observer at its terminal event, every cancel answered), false at the deadline.
   */
  async waitIdle(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.tasks.size === 0) return true;
      await sleep(50);
    }
    return false;
  }

  /**
   * The load has stopped: observers and cancels get until `timeoutMs` from now to finish; then
   * whatever is still open is aborted (its observer gives up: a failure, reported by verify()).
   */
  async settle({ timeoutMs }) {
    this.giveUpAt = Date.now() + timeoutMs;
    const aborter = setTimeout(() => { for (const a of [...this.active]) a.abort(); }, timeoutMs + 50);
    try {
      while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    } finally {
      clearTimeout(aborter);
    }
  }

  /** Polls the job's status on random live instances until terminal or the deadline. */
  async finalStatus(job, deadline) {
    let last = null;
    while (Date.now() < deadline) {
      const inst = this.pick();
      const r = await this.call(inst, 'GET', `${ASYNC}/${encodeURIComponent(job.id)}/status`);
      last = r;
      if (r.status === 200 && TERMINAL_STATUSES.includes(r.json?.status)) return { json: r.json };
      if (r.status === 404) return { absent: true, r };
      await sleep(100);
    }
    return { stuck: true, r: last };
  }

  /**
   * After settle(): every job's final status (bounded wait) and a late full read of its log (by an
   * observer of the same kind), then every check. Failures go to this.failures.
   */
  async verify({ timeoutMs = 30_000, concurrency = 8 } = {}) {
    const deadline = Date.now() + timeoutMs;
    this.giveUpAt = deadline;
    const aborter = setTimeout(() => { for (const a of [...this.active]) a.abort(); }, timeoutMs + 50);
    const jobs = [...this.jobs.values()].filter((j) => j.created !== false && !j.checked && j.start !== null);
    let i = 0;
    const worker = async () => {
      while (i < jobs.length) {
        const job = jobs[i++];
        job.checked = true;
        const st = await this.finalStatus(job, deadline);
        if (st.absent) {
          if (job.created === true) {
            this.count.false404 += 1;
            this.fail('gone', `${job.id} (started on ${job.inst}, answered 200) is gone: status answers 404`);
          }
          job.final = 'absent';
          continue;
        }
        if (st.stuck) {
          this.fail('stuck', `${job.id} (started on ${job.inst}) is not terminal ${Math.round(timeoutMs / 1000)} s after the settle: ` +
            `${st.r ? errText(st.r) : 'no answer'}`);
          job.final = 'stuck';
          continue;
        }
        job.final = st.json;
        await this.observe(job, 'late', { late: true });
        this.checkJob(job);
        for (const o of [...job.observers, job.late]) { o.data = null; o.types = null; }  // keep the counts only
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, worker));
    } finally {
      clearTimeout(aborter);
      this.giveUpAt = Infinity;
    }
  }

  /** Every check on one job whose final status and late read are known. */
  checkJob(job) {
    const S = job.final;
    const id = job.id;
    const ref = job.late;
    if (!ref.terminal) {
      this.fail('late-read', `${id}: a full read after the end got no terminal event (${ref.gaveUp}; ${JSON.stringify(ref.lastFailure)})`);
      return;
    }
    const n = ref.terminal.id;
    for (let k = 1; k <= n; k++) {
      if (!ref.data.has(k)) { this.fail('log-gap', `${id}: the log read after the end lacks id ${k} of ${n}`); return; }
    }
    if (ref.maxId !== n || ref.dups || ref.outOfOrder || ref.badIds) {
      this.fail('log-ids', `${id}: the log read after the end has ids up to ${ref.maxId}, terminal at ${n}, ` +
        `${ref.dups} duplicated, ${ref.outOfOrder} out of order, ${ref.badIds} without a numeric id`);
    }
    if (S.metadata?.events !== n) this.fail('events-count', `${id}: status says ${S.metadata?.events} events, the log has ${n}`);
    const frames = [];
    for (let k = 1; k <= n; k++) frames.push({ event: ref.types.get(k), json: JSON.parse(ref.data.get(k)) });
    const text = frames.filter((f) => f.json.type === 'content_block_delta' && f.json.delta?.type === 'text_delta')
      .map((f) => f.json.delta.text).join('');
    const last = frames.at(-1);
    const prev = frames.at(-2);
    if (frames[0]?.json.type !== 'message_start' && !(S.status === 'error' && n === 1)) {
      this.fail('log-shape', `${id}: the log starts with ${frames[0]?.event}, not message_start`);
    }
    if (S.status === 'completed') {
      if (last.json.type !== 'message_stop' || prev?.json.delta?.stop_reason !== 'end_turn') {
        this.fail('log-shape', `${id} completed but its log ends ${prev?.data ?? ''} ${last.event}`);
      }
      if (text !== job.prompt) this.fail('text', `${id} completed with text ≠ prompt: got ${JSON.stringify(short(text, 120))}`);
    } else if (S.status === 'cancelled') {
      if (last.json.type !== 'message_stop' || prev?.json.delta?.stop_reason !== 'cancelled') {
        this.fail('log-shape', `${id} cancelled but its log ends ${JSON.stringify(prev?.json)} ${last.event}`);
      }
      if (!job.prompt.startsWith(text)) this.fail('text', `${id} cancelled with a text that is not a prefix of the prompt`);
    } else if (S.status === 'error') {
      if (last.json.type !== 'error') this.fail('log-shape', `${id} is error but its log ends with ${last.event}`);
      if (!S.error_message) this.fail('error-message', `${id} is error with no error_message`);
      else if (!ref.data.get(n).includes(S.error_message)) {
        this.fail('error-message', `${id}: error_message ${JSON.stringify(S.error_message)} is not in its error event ${short(ref.data.get(n), 200)}`);
      }
      if (!job.prompt.startsWith(text)) this.fail('text', `${id} failed with a text that is not a prefix of the prompt`);
      // (a start that was not confirmed, 503 or no answer, yet exists is reported in the figures)
      const why = job.created === true ? this.errorRule?.(job, S) : null;
      if (why) {
        this.fail('unexpected-error', `${id} (started on ${job.inst} at +${job.start.sentAt - this.t0} ms, answered after ` +
          `${job.start.answeredAt - job.start.sentAt} ms) ended error ${JSON.stringify(S.error_message)} at +${Date.parse(S.completed_at) - this.t0} ms ` +
          `with ${n} events: ${why}`);
      }
    }
    // every observer: ids consecutive from 1 across reconnects, the same bytes as the log
    for (const o of job.observers) {
      o.lost = 0;
      o.mismatch = o.dupMismatch;
      for (let k = 1; k <= Math.max(n, o.maxId); k++) {
        const a = o.data.get(k);
        if (a === undefined) { if (o.terminal || k <= o.maxId) o.lost += 1; continue; }
        if (a !== ref.data.get(k)) o.mismatch += 1;
      }
      if (!o.terminal) {
        this.fail('observer-gave-up', `${id} (started on ${job.inst}, ended ${S.status}) ${o.label}: no terminal event (${o.gaveUp}) after ${o.attempts} attempts on ` +
          `${o.instances.join(',')}; got ids up to ${o.lastId} of ${n}; outcomes ${JSON.stringify(o.outcomes)}; last ${JSON.stringify(o.lastFailure)}`);
      }
      if (o.lost || o.dups || o.outOfOrder || o.mismatch || o.badIds) {
        let first = '';
        for (let k = 1; k <= Math.max(n, o.maxId); k++) {
          const a = o.data.get(k);
          if (a !== undefined && a !== ref.data.get(k)) {
            first = `; id ${k} was ${short(a, 160)} for this observer but is ${short(ref.data.get(k) ?? '(absent)', 160)} in the log`;
            break;
          }
        }
        this.fail('observer-events', `${id} (started on ${job.inst}, ended ${S.status}) ${o.label}: ${o.lost} lost, ${o.dups} duplicated, ` +
          `${o.outOfOrder} out of order, ${o.mismatch} different from the log, ${o.badIds} without an id ` +
          `(${o.reconnects} reconnects on ${o.instances.join(',')})${first}`);
      }
    }
    // cancels: 200 only if the job ends cancelled (or had ended before the cancel was sent);
    // 409 only if it ended otherwise after the cancel arrived, naming the final status
    const completedAt = Date.parse(S.completed_at);
    for (const c of job.cancels) {
      const r = c.final;
      if (!r) continue;
      const after = completedAt - r.sentAt;  // > 0: the job ended after the cancel was sent
      const when = `sent to ${r.inst} at +${r.sentAt - this.t0} ms, answered after ${r.answeredAt - r.sentAt} ms, ` +
        `job started on ${job.inst} and ended ${S.status} at +${completedAt - this.t0} ms`;
      if (r.status === 200) {
        if (S.status !== 'cancelled' && after > this.tolerateMs) {
          this.fail('cancel-200', `cancel of ${id} (${c.kind}) answered 200, but the job ended ` +
            `${S.status}${S.error_message ? ` (${S.error_message})` : ''} ${after} ms after the cancel was sent (${when})`);
        }
      } else if (r.status === 409) {
        const explanation = String(r.json?.detail ?? '');
        if (S.status === 'cancelled') this.fail('cancel-409', `cancel of ${id} (${c.kind}) answered 409 but the job ended cancelled (${when}): ${explanation}`);
        else if (!new RegExp(`\\b${S.status}\\b`).test(explanation)) {
          this.fail('cancel-409', `cancel of ${id} (${c.kind}) answered 409 without naming the final status ${S.status} (${when}): ${JSON.stringify(explanation)}`);
        }
        if (after < -this.tolerateMs) {
          this.fail('cancel-409', `cancel of ${id} (${c.kind}) answered 409, but the job had ended ${-after} ms before the cancel was sent (§1.4: 200; ${when})`);
        }
      } else if (r.status !== 404) {
        this.fail('cancel-status', `cancel of ${id} (${c.kind}) answered ${errText(r)} (${when})`);
      }
    }
  }

  /** The figures to report (after verify()). */
  figures() {
    const obs = [...this.jobs.values()].flatMap((j) => j.observers);
    const sum = (f) => obs.reduce((a, o) => a + (f(o) ?? 0), 0);
    const byStatus = {};
    let refusedStarts = 0;
    let unknownStarts = 0;
    const existDespite = [];
    for (const j of this.jobs.values()) {
      if (j.created === 'unknown') {
        if (j.start?.status === 503) refusedStarts += 1; else unknownStarts += 1;
        if (j.final && typeof j.final === 'object') {
          existDespite.push({ id: j.id, start: short(errText(j.start), 120), at_ms: j.start.sentAt - this.t0,
            final: j.final.status, error_message: j.final.error_message ?? undefined });
        }
      }
      const k = typeof j.final === 'object' && j.final ? j.final.status : (j.final ?? 'unchecked');
      if (j.created === true || k !== 'absent') byStatus[k] = (byStatus[k] ?? 0) + 1;
    }
    const cancels = {};
    for (const j of this.jobs.values()) {
      for (const c of j.cancels) {
        const k = `${c.kind}:${c.final ? c.final.status : 'no-answer'}`;
        cancels[k] = (cancels[k] ?? 0) + 1;
      }
    }
    const now = performance.now();
    let longest503 = 0;
    let longestDown = 0;
    let open503 = 0;
    for (const p of this.periods.values()) {
      longest503 = Math.max(longest503, p.longest503, p.open503 === null ? 0 : now - p.open503);
      longestDown = Math.max(longestDown, p.longestDown);
      if (p.open503 !== null) open503 += 1;
    }
    return {
      jobs_started: [...this.jobs.values()].filter((j) => j.created === true).length,
      starts_refused_503: refusedStarts,
      starts_unanswered: unknownStarts,
      unconfirmed_starts_that_exist: existDespite.length,
      unconfirmed_starts_detail: existDespite.slice(0, 5),
      observers: obs.length,
      events_delivered: sum((o) => o.delivered),
      events_lost: sum((o) => o.lost),
      events_duplicated: sum((o) => o.dups),
      events_out_of_order: sum((o) => o.outOfOrder),
      byte_mismatches: sum((o) => o.mismatch),
      observer_reconnects: sum((o) => o.reconnects),
      observers_gave_up: obs.filter((o) => !o.terminal).length,
      longest_silence_ms: Math.round(obs.reduce((a, o) => Math.max(a, o.silence), 0)),
      http_503: this.count.http503,
      longest_503_ms: Math.round(longest503),
      still_503_at_end: open503,
      unanswered_requests: this.count.connErrors + this.count.timeouts,
      longest_unreachable_ms: Math.round(longestDown),
      false_404: this.count.false404,
      jobs_by_status: byStatus,
      cancels,
    };
  }

  /** The failures grouped by kind, each kind with its count and first few messages. */
  report(max = 4) {
    const by = new Map();
    for (const f of this.failures) {
      if (!by.has(f.kind)) by.set(f.kind, []);
      by.get(f.kind).push(f.msg);
    }
    return [...by].map(([k, msgs]) => `${k} ×${msgs.length}:\n    ${msgs.slice(0, max).join('\n    ')}`).join('\n  ');
  }
}
