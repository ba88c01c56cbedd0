// The playground page: compose and start jobs, watch one live (resuming after a reload), its status,
// and the list of recent jobs. The URL's hash (#job=ID) names the job shown, so it can be shared.
import { ApiError, SpoolClient } from './api.js';
import { MessageModel, render } from './view.js';

const $ = (id) => document.getElementById(id);
const SECRET_KEY = 'spool.secret';  // localStorage: the Authorization value, typed once
const PROMPTS_KEY = 'spool.prompts';  // localStorage: id → the start of its prompt, for the list
const SAVED_PREFIX = 'spool.job.';  // sessionStorage: a job's MessageModel, to resume after a reload
const TERMINAL = new Set(['completed', 'cancelled', 'error']);

const client = new SpoolClient(() => localStorage.getItem(SECRET_KEY) || '');
let current = null;  // {id, model, abort, status, saveTimer, renderQueued, statusTimer}
let listCursor = null;

// ---- messages to the person -----------------------------------------------------------------

let bannerKind = null;
function showError(err) {
  const kind = err instanceof ApiError ? err.kind : 'other';
  bannerKind = kind;
  $('banner-text').textContent = err.message || String(err);
  $('banner').hidden = false;
  if (kind === 'unauthorized') $('secret').focus();
}
function clearError(kind) {
  if (kind && bannerKind !== kind) return;
  $('banner').hidden = true;
  bannerKind = null;
}
$('banner-close').addEventListener('click', () => clearError());

// ---- auth -----------------------------------------------------------------------------------

$('secret').value = localStorage.getItem(SECRET_KEY) || '';
$('auth-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const v = $('secret').value.trim();
  if (v) localStorage.setItem(SECRET_KEY, v);
  else localStorage.removeItem(SECRET_KEY);
  $('auth-state').textContent = v ? 'saved in this browser' : 'cleared';
  clearError();
  loadModels();
  refreshList();
  if (current) openJob(current.id);
});

// ---- models and composing -------------------------------------------------------------------

async function loadModels() {
  try {
    const res = await client.models();
    const select = $('model');
    const chosen = select.value;
    select.replaceChildren();
    for (const m of res.data) {
      const o = document.createElement('option');
      o.value = m.id;
      o.textContent = `${m.display_name || m.id} (${m.engine})`;
      if (m.default && !chosen) o.selected = true;
      select.append(o);
    }
    if (chosen) select.value = chosen;
    clearError('unreachable');
  } catch (e) {
    showError(e);
  }
}

function numberField(id) {
  const v = $(id).value.trim();
  return v === '' ? undefined : Number(v);
}

/** The §2 body the form describes; throws an Error naming a field that does not parse. */
function requestBody() {
  const body = {
    model: $('model').value || undefined,
    max_tokens: numberField('max-tokens'),
    messages: [{ role: 'user', content: $('prompt').value }],
  };
  const system = $('system').value.trim();
  if (system) body.system = system;
  for (const [id, key] of [['temperature', 'temperature'], ['top-p', 'top_p'], ['top-k', 'top_k']]) {
    const v = numberField(id);
    if (v !== undefined) body[key] = v;
  }
  const stops = $('stop').value.split(',').map((s) => s.trim()).filter(Boolean);
  if (stops.length) body.stop_sequences = stops;
  if ($('thinking').checked) body.thinking = { type: 'enabled', budget_tokens: numberField('thinking-budget') ?? 2048 };
  const tools = $('tools').value.trim();
  if (tools) {
    try {
      body.tools = JSON.parse(tools);
    } catch (e) {
      throw new Error(`Tools: not valid JSON (${e.message}).`);
    }
  }
  if ($('tool-choice').value) body.tool_choice = { type: $('tool-choice').value };
  return body;
}

$('compose').addEventListener('submit', async (e) => {
  e.preventDefault();
  let body;
  try {
    body = requestBody();
  } catch (err) {
    showError(err);
    return;
  }
  $('start').disabled = true;
  try {
    const res = await client.start(body);
    rememberPrompt(res.message_id, body.messages[0].content);
    clearError();
    location.hash = `job=${encodeURIComponent(res.message_id)}`;
    refreshList();
  } catch (err) {
    showError(err);
  } finally {
    $('start').disabled = false;
  }
});
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('compose').requestSubmit();
});

function rememberPrompt(id, prompt) {
  const all = JSON.parse(localStorage.getItem(PROMPTS_KEY) || '{}');
  all[id] = prompt.slice(0, 120);
  const ids = Object.keys(all);
  for (const old of ids.slice(0, Math.max(0, ids.length - 300))) delete all[old];
  localStorage.setItem(PROMPTS_KEY, JSON.stringify(all));
}

// ---- the job shown --------------------------------------------------------------------------

function jobFromHash() {
  const m = /^#job=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

window.addEventListener('hashchange', () => {
  const id = jobFromHash();
  if (id) openJob(id);
  else closeJob();
});

function closeJob() {
  if (!current) return;
  saveNow();
  current.abort.abort();
  clearTimeout(current.statusTimer);
  current = null;
  $('job').hidden = true;
  $('status-panel').hidden = true;
  markCurrentInList();
}

function openJob(id) {
  closeJob();
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(SAVED_PREFIX + id) || 'null'); } catch { saved = null; }
  current = { id, model: new MessageModel(saved), abort: new AbortController(), status: null, saveTimer: null,
    renderQueued: false, statusTimer: null };
  $('job').hidden = false;
  $('status-panel').hidden = false;
  $('job-id').textContent = id;
  $('job-link').href = `#job=${encodeURIComponent(id)}`;
  $('job-badge').textContent = '';
  $('job-badge').className = 'badge';
  $('job-conn').textContent = '';
  $('output').replaceChildren();
  $('status-list').replaceChildren();
  $('job-cancel').disabled = false;
  $('job-delete').disabled = false;
  render($('output'), current.model);
  markCurrentInList();
  pollStatus(current);
  if (!current.model.ended) watchJob(current);
}

async function watchJob(job) {
  $('job-conn').textContent = 'connecting…';
  try {
    await client.watch(job.id, job.model.position, {
      signal: job.abort.signal,
      onConnection: (state) => {
        if (current === job) $('job-conn').textContent = state === 'open' ? 'live' : 'reconnecting…';
      },
      onEvent: (type, data, position) => {
        if (current !== job) return;
        job.model.apply(type, data, position);
        queueRender(job);
        queueSave(job);
      },
    });
    if (current !== job) return;
    job.model.ended = true;
    $('job-conn').textContent = '';
    saveNow();
    render($('output'), job.model);
    pollStatus(job);
    refreshList();
  } catch (e) {
    if (job.abort.signal.aborted || current !== job) return;
    $('job-conn').textContent = '';
    if (e instanceof ApiError && e.kind === 'not_found') {
      jobGone(job, 'This job does not exist: it was deleted or has expired.');
      return;
    }
    if (e instanceof ApiError && e.status === 409 && job.model.position !== 0) {
      // The id was deleted and used again since this tab saved it: what it shows is of the
      // earlier job. Show the new one from its start.
      sessionStorage.removeItem(SAVED_PREFIX + job.id);
      job.model = new MessageModel();
      $('output').replaceChildren();
      render($('output'), job.model);
      watchJob(job);
      return;
    }
    showError(e);
  }
}

function queueRender(job) {
  if (job.renderQueued) return;
  job.renderQueued = true;
  requestAnimationFrame(() => {
    job.renderQueued = false;
    if (current === job) render($('output'), job.model);
  });
}

function queueSave(job) {
  if (job.saveTimer) return;
  job.saveTimer = setTimeout(() => {
    job.saveTimer = null;
    if (current === job) saveNow();
  }, 200);
}

/** Keeps the shown job's model, with the position of its last event, for a reload of this tab. */
function saveNow() {
  if (!current) return;
  try {
    sessionStorage.setItem(SAVED_PREFIX + current.id, JSON.stringify(current.model));
  } catch {
    /* storage full: a reload then reads the job from its start, which is also exact */
  }
}
window.addEventListener('pagehide', saveNow);

function jobGone(job, message) {
  job.abort.abort();
  clearTimeout(job.statusTimer);
  clearTimeout(job.saveTimer);
  job.saveTimer = null;
  sessionStorage.removeItem(SAVED_PREFIX + job.id);
  job.model = new MessageModel();
  $('output').replaceChildren();
  const p = document.createElement('p');
  p.className = 'muted';
  p.textContent = message;
  $('output').append(p);
  $('job-badge').textContent = 'gone';
  $('job-badge').className = 'badge s-cancelled';
  $('job-cancel').disabled = true;
  $('job-delete').disabled = true;
  $('status-list').replaceChildren();
  refreshList();
}

async function pollStatus(job) {
  clearTimeout(job.statusTimer);
  try {
    const st = await client.status(job.id);
    if (current !== job) return;
    job.status = st;
    showStatus(st);
    clearError('unreachable');
    if (!TERMINAL.has(st.status) || !job.model.ended) job.statusTimer = setTimeout(() => pollStatus(job), 1000);
  } catch (e) {
    if (current !== job) return;
    if (e instanceof ApiError && e.kind === 'not_found') {
      jobGone(job, 'This job does not exist: it was deleted or has expired.');
      return;
    }
    showError(e);
    job.statusTimer = setTimeout(() => pollStatus(job), 2000);
  }
}

/** A timestamp in local time: the time of day (with milliseconds), and the date unless today. */
function when(iso, withMs = true) {
  if (!iso) return '—';
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    (withMs ? `.${pad(d.getMilliseconds(), 3)}` : '');
  const today = new Date().toDateString() === d.toDateString();
  return today ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

function showStatus(st) {
  $('job-badge').textContent = st.status;
  $('job-badge').className = `badge s-${st.status}`;
  const terminal = TERMINAL.has(st.status);
  $('job-cancel').disabled = terminal;
  const md = st.metadata || {};
  const usage = md.usage || {};
  const end = st.completed_at ? Date.parse(st.completed_at) : Date.now();
  const seconds = Math.max(0, (end - Date.parse(st.created_at)) / 1000);
  const rows = [
    ['status', st.status],
    ['model', md.model ?? '—'],
    ['created', when(st.created_at)],
    ['updated', when(st.updated_at)],
    ['completed', when(st.completed_at)],
    [terminal ? 'duration' : 'running for', `${seconds.toFixed(2)} s`],
    ['input tokens', usage.input_tokens ?? '—'],
    ['output tokens', usage.output_tokens ?? '—'],
    ['tokens/s', seconds ? ((usage.output_tokens || 0) / seconds).toFixed(1) : '—'],
    ['events', md.events ?? '—'],
    ['observers', md.observers ?? '—'],
    ['queue position', md.queue_position ?? '—'],
    ['thinking', md.thinking_enabled ? 'on' : 'off'],
  ];
  if (st.error_message) rows.push(['error', st.error_message]);
  const dl = $('status-list');
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    dd.dataset.field = k;
    dl.append(dt, dd);
  }
}

$('job-cancel').addEventListener('click', async () => {
  if (!current) return;
  const job = current;
  $('job-cancel').disabled = true;
  try {
    await client.cancel(job.id);
    pollStatus(job);
    refreshList();
  } catch (e) {
    $('job-cancel').disabled = false;
    if (e instanceof ApiError && e.kind === 'not_found') jobGone(job, 'This job does not exist any more.');
    else showError(e);
  }
});

let deleteArmed = null;
$('job-delete').addEventListener('click', async () => {
  if (!current) return;
  const btn = $('job-delete');
  if (!deleteArmed) {  // the first click asks, the second deletes
    btn.textContent = 'Really delete?';
    deleteArmed = setTimeout(() => { deleteArmed = null; btn.textContent = 'Delete'; }, 4000);
    return;
  }
  clearTimeout(deleteArmed);
  deleteArmed = null;
  btn.textContent = 'Delete';
  const job = current;
  try {
    await client.remove(job.id);
    jobGone(job, 'Deleted.');
  } catch (e) {
    if (e instanceof ApiError && e.kind === 'not_found') jobGone(job, 'This job does not exist any more.');
    else showError(e);
  }
});

$('job-copy').addEventListener('click', async () => {
  if (!current) return;
  const link = `${location.href.split('#')[0]}#job=${encodeURIComponent(current.id)}`;
  try {
    await navigator.clipboard.writeText(link);
    $('job-copy').textContent = 'Copied';
  } catch {
    window.prompt('Link to this job:', link);  // no clipboard outside secure contexts
  }
  setTimeout(() => { $('job-copy').textContent = 'Copy link'; }, 1500);
});

// ---- recent jobs ----------------------------------------------------------------------------

/** Reloads the list from the newest job, as long as it is now (at least 20 entries). */
async function refreshList() {
  try {
    const res = await client.list(Math.min(1000, Math.max(20, $('jobs-list').children.length)), null);
    listCursor = res.next_cursor;
    fillList(res.data, false);
    $('jobs-more').hidden = !res.has_more;
    clearError('unreachable');
  } catch (e) {
    if (!(e instanceof ApiError && e.kind === 'unauthorized' && bannerKind === 'unauthorized')) showError(e);
  }
}

$('jobs-more').addEventListener('click', async () => {
  try {
    const res = await client.list(20, listCursor);
    listCursor = res.next_cursor;
    fillList(res.data, true);
    $('jobs-more').hidden = !res.has_more;
  } catch (e) {
    showError(e);
  }
});
$('jobs-refresh').addEventListener('click', () => refreshList());

function fillList(entries, append) {
  const ul = $('jobs-list');
  if (!append) ul.replaceChildren();
  const prompts = JSON.parse(localStorage.getItem(PROMPTS_KEY) || '{}');
  for (const st of entries) {
    const li = document.createElement('li');
    li.dataset.id = st.message_id;
    const preview = document.createElement('span');
    preview.className = 'preview';
    preview.textContent = prompts[st.message_id] || st.message_id;
    const meta = document.createElement('span');
    meta.className = 'meta';
    const dot = document.createElement('span');
    dot.className = `dot s-${st.status}`;
    const text = document.createElement('span');
    const md = st.metadata || {};
    text.textContent = `${st.status} · ${md.model ?? ''} · ${md.usage?.output_tokens ?? 0} tok · ${when(st.created_at, false)}`;
    meta.append(dot, text);
    li.append(preview, meta);
    li.addEventListener('click', () => { location.hash = `job=${encodeURIComponent(st.message_id)}`; });
    ul.append(li);
  }
  $('jobs-empty').hidden = ul.children.length > 0;
  markCurrentInList();
}

function markCurrentInList() {
  for (const li of $('jobs-list').children) li.classList.toggle('current', !!current && li.dataset.id === current.id);
}

// ---- start ----------------------------------------------------------------------------------

loadModels();
refreshList();
setInterval(() => { if (document.visibilityState === 'visible') refreshList(); }, 3000);
const first = jobFromHash();
if (first) openJob(first);
