// One job's message as the playground shows it: a model built from the job's events (which can be
// saved and restored with the position of the last event applied), and its rendering.

/** The message so far. `position` is the SSE id of the last event applied (0: none yet). */
export class MessageModel {
  constructor(saved) {
    this.position = 0;
    this.blocks = [];  // {type: 'text'|'thinking'|'tool_use', text, name, json, done}
    this.stopReason = null;
    this.error = null;
    this.usage = null;
    this.model = null;
    this.ended = false;
    if (saved) Object.assign(this, saved);
  }

  /** Applies one event at log position `position`. */
  apply(type, data, position) {
    this.position = position;
    switch (type) {
      case 'message_start':
        this.model = data.message?.model ?? null;
        this.usage = data.message?.usage ?? null;
        break;
      case 'content_block_start': {
        const b = data.content_block || {};
        this.blocks[data.index] = { type: b.type, text: b.text || b.thinking || '', name: b.name || '', json: '', done: false };
        break;
      }
      case 'content_block_delta': {
        const b = this.blocks[data.index];
        const d = data.delta || {};
        if (!b) break;
        if (d.type === 'text_delta') b.text += d.text;
        else if (d.type === 'thinking_delta') b.text += d.thinking;
        else if (d.type === 'input_json_delta') b.json += d.partial_json;
        break;
      }
      case 'content_block_stop':
        if (this.blocks[data.index]) this.blocks[data.index].done = true;
        break;
      case 'message_delta':
        this.stopReason = data.delta?.stop_reason ?? null;
        this.usage = data.usage ?? this.usage;
        break;
      case 'message_stop':
        this.ended = true;
        break;
      case 'error':
        this.error = data.error?.detail?.explanation || data.error?.message || 'The job failed.';
        this.ended = true;
        break;
      default:
        break;
    }
  }

  /** The text blocks joined: what the model answered. */
  text() {
    return this.blocks.filter((b) => b && b.type === 'text').map((b) => b.text).join('');
  }
}

const LABELS = { thinking: 'Thinking', tool_use: 'Tool use' };
const shownJson = new WeakMap();  // tool_use block element → the input JSON it shows

/** Renders `model` into `root`, reusing the block elements already there. */
export function render(root, model) {
  const want = model.blocks.length + (model.error ? 1 : 0) + (model.stopReason ? 1 : 0);
  while (root.children.length > want) root.lastChild.remove();
  model.blocks.forEach((b, i) => {
    if (!b) return;
    let el = root.children[i];
    if (!el || el.dataset.blockType !== b.type) {
      el = document.createElement('div');
      el.dataset.blockType = b.type;
      el.className = `block block-${b.type}`;
      if (LABELS[b.type]) {
        const label = document.createElement('span');
        label.className = 'block-label';
        label.textContent = LABELS[b.type];
        el.append(label);
      }
      const body = document.createElement(b.type === 'tool_use' ? 'div' : 'span');
      body.className = 'block-body';
      el.append(body);
      if (root.children[i]) root.children[i].replaceWith(el);
      else root.append(el);
    }
    const body = el.querySelector('.block-body');
    if (b.type === 'tool_use') {
      if (shownJson.get(el) !== b.json) {
        const name = document.createElement('code');
        name.textContent = b.name;
        const pre = document.createElement('pre');
        pre.textContent = prettyJson(b.json);
        body.replaceChildren(name, pre);
        shownJson.set(el, b.json);
      }
    } else {
      // Text only grows: append what is new to one text node, so a long answer costs the same per
      // frame as a short one.
      let node = body.firstChild;
      if (!node) {
        node = document.createTextNode('');
        body.append(node);
      }
      if (node.length < b.text.length) node.appendData(b.text.slice(node.length));
      else if (node.length > b.text.length) node.data = b.text;
    }
    el.classList.toggle('caret', !b.done && !model.ended);
  });
  let next = model.blocks.length;
  if (model.error) next = tail(root, next, 'block block-error', `Error: ${model.error}`);
  if (model.stopReason) tail(root, next, 'stop-reason', `stop reason: ${model.stopReason}`);
}

function tail(root, index, className, text) {
  let el = root.children[index];
  if (!el || el.className !== className) {
    el = document.createElement('div');
    el.className = className;
    if (root.children[index]) root.children[index].replaceWith(el);
    else root.append(el);
  }
  if (el.textContent !== text) el.textContent = text;
  return index + 1;
}

function prettyJson(s) {
  if (!s) return '{}';
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return s; }
}
