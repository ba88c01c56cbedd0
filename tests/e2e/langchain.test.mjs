// LangChain JS's ChatAnthropic (`@langchain/anthropic`, on the Anthropic SDK it bundles) against
// spool's POST /v1/messages, with the mock engine (§7: it echoes the last user message's text,
// thinks "Thinking about: <five words>" when thinking is enabled, and calls the chosen or first
// tool with input {} when tool_choice is any or tool). Every request goes through a recording
// fetch, so the tests check what Spool received as well as what LangChain made of the answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatAnthropic } from '@langchain/anthropic';
import { HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import { startServer } from './lib/harness.mjs';
import { client, words } from './lib/http.mjs';
import { within, recordingFetch, waitIdle, activeJobs, SIGNATURE_RE } from './lib/sdk.mjs';

const T = 15_000; // deadline of any one call

let srv; // 3 ms per token
let slow; // 50 ms per token: a 200-word reply takes 10 s, so an abort lands mid-way
let proxy; // the anthropic engine in front of srv: its thinking signatures are an upstream's
let rec;
before(async () => {
  [srv, slow] = await Promise.all([
    startServer(['--mock-token-delay-ms', '3']),
    startServer(['--mock-token-delay-ms', '50']),
  ]);
  proxy = await startServer(['--model', `default=anthropic:${srv.url}`]);
  rec = recordingFetch();
});
after(async () => { await Promise.all([proxy.stop(), srv.stop(), slow.stop()]); });

const chat = (opts = {}, on = srv) => new ChatAnthropic({
  model: 'default', apiKey: 'x', anthropicApiUrl: on.url, maxRetries: 0, maxTokens: 1000,
  clientOptions: { fetch: rec.fetch, timeout: T }, ...opts,
});
const THINKING = { thinking: { type: 'enabled', budget_tokens: 1024 }, maxTokens: 2048 };

/** Reads a LangChain stream to the end, folding its chunks into one message. */
async function fold(stream, what = 'the stream') {
  return within((async () => {
    const chunks = [];
    let full;
    for await (const ch of await stream) {
      chunks.push(ch);
      full = full === undefined ? ch : full.concat(ch);
    }
    return { chunks, full };
  })(), T, what);
}

test('invoke returns the echoed text, stop reason and usage', async () => {
  const text = 'Hello from LangChain, twice  spaced.';
  const r = await within(chat().invoke([new SystemMessage('be terse'), new HumanMessage(text)]), T, 'invoke');
  assert.equal(r.content, text);
  assert.equal(r.response_metadata.stop_reason, 'end_turn');
  assert.equal(r.response_metadata.stop_sequence, null);
  assert.match(r.response_metadata.id, /^msg_[0-9a-f]+$/);
  assert.equal(r.usage_metadata.input_tokens, 7, 'the message\'s 5 words and the system prompt\'s 2');
  assert.equal(r.usage_metadata.output_tokens, 5);
  assert.deepEqual(r.tool_calls, []);
  const body = rec.last();
  assert.equal(body.model, 'default');
  assert.equal(body.stream, false);
  assert.equal(body.max_tokens, 1000);
  assert.equal(body.system, 'be terse');
  assert.deepEqual(body.messages, [{ role: 'user', content: text }]);
});

test('stream yields one chunk per token that fold to the same text', async () => {
  const text = 'streaming through LangChain JS today';
  const { chunks, full } = await fold(chat().stream(text));
  const pieces = chunks.map((c) => (typeof c.content === 'string' ? c.content : c.content.map((b) => b.text ?? '').join('')))
    .filter((s) => s !== '');
  assert.deepEqual(pieces, ['streaming ', 'through ', 'LangChain ', 'JS ', 'today']);
  const folded = typeof full.content === 'string' ? full.content : full.content.map((b) => b.text ?? '').join('');
  assert.equal(folded, text);
  assert.equal(full.usage_metadata.output_tokens, 5);
  assert.equal(rec.last().stream, true);
});

test('invoke with thinking: a thinking block with its signature, then the text', async () => {
  const r = await within(chat(THINKING).invoke('think first about this'), T, 'invoke with thinking');
  assert.deepEqual(r.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(r.content[0].thinking, 'Thinking about: think first about this');
  assert.match(r.content[0].signature, SIGNATURE_RE);
  assert.equal(r.content[1].text, 'think first about this');
  assert.deepEqual(rec.last().thinking, { type: 'enabled', budget_tokens: 1024 });
});

// Through the anthropic engine, whose signatures are the upstream's: LangChain folds chunks by
// joining each string field of a block, so the signature is whole because the block's
// content_block_start has "signature": "" as Anthropic's has (a Spool-made signature is in both,
// §3.2, and LangChain doubles it; no upstream checks those).
test('stream with thinking: the thinking arrives, its signature is kept, and the next turn sends it back', async () => {
  const prompt = 'one two three four five six';
  const llm = chat(THINKING, proxy);
  const { chunks, full } = await fold(llm.stream(prompt), 'the thinking stream');
  const thinkingDeltas = chunks.flatMap((c) => (Array.isArray(c.content) ? c.content : []))
    .filter((b) => b.type === 'thinking' && b.thinking).map((b) => b.thinking);
  assert.equal(thinkingDeltas.join(''), 'Thinking about: one two three four five');
  assert.ok(thinkingDeltas.length >= 5, 'the thinking streamed token by token');
  const blocks = full.content;
  assert.deepEqual(blocks.map((b) => b.type), ['thinking', 'text']);
  assert.equal(blocks[0].thinking, 'Thinking about: one two three four five');
  assert.equal(blocks[1].text, prompt);
  const r2 = await within(llm.invoke([new HumanMessage(prompt), full, new HumanMessage('and then?')]), T, 'the follow-up invoke');
  const sent = rec.last().messages;
  assert.equal(sent.length, 3);
  assert.deepEqual(sent[1], {
    role: 'assistant',
    content: [
      { type: 'thinking', thinking: 'Thinking about: one two three four five', signature: blocks[0].signature },
      { type: 'text', text: prompt },
    ],
  });
  assert.deepEqual(r2.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(r2.content[1].text, 'and then?');
  assert.equal(r2.usage_metadata.input_tokens, 6 + 7 + 6 + 2, 'user, thinking, text, user: Spool read the thinking block');
  assert.match(blocks[0].signature, SIGNATURE_RE, 'the folded thinking block has one whole signature');
});

const weather = (calls) => tool(async ({ city }) => { calls.push(city ?? null); return 'sunny, 21C'; }, {
  name: 'get_weather', description: 'the weather in a city', schema: z.object({ city: z.string().optional() }),
});

async function toolRoundTrip(firstCall) {
  const calls = [];
  const getWeather = weather(calls);
  const from = rec.bodies.length;
  const msgs = [new HumanMessage('weather in Paris?')];
  const ai = await firstCall(chat().bindTools([getWeather], { tool_choice: 'any' }), msgs);
  assert.equal(ai.tool_calls.length, 1);
  const call = ai.tool_calls[0];
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(call.args, {});
  assert.match(call.id, /^tool_[0-9a-f]{32}$/);
  msgs.push(ai);
  const result = await within(getWeather.invoke(call), T, 'the tool');
  assert.ok(result instanceof ToolMessage);
  msgs.push(result);
  assert.deepEqual(calls, [null], 'the tool ran once, with the mock\'s input {}');
  const fin = await within(chat().bindTools([getWeather]).invoke(msgs), T, 'the follow-up invoke');
  assert.equal(fin.response_metadata.stop_reason, 'end_turn');
  assert.deepEqual(fin.tool_calls, []);

  const [first, second] = rec.bodies.slice(from);
  assert.deepEqual(first.tool_choice, { type: 'any' });
  assert.deepEqual(first.tools.map((t) => t.name), ['get_weather']);
  assert.deepEqual(first.tools[0].input_schema.properties, { city: { type: 'string' } });
  assert.equal(second.tool_choice, undefined, 'auto');
  // From a streamed call LangChain also sends back the block's start_timestamp (a Spool field of
  // content_block_start, §3.2); Spool ignores unknown block fields (§2).
  const [assistant, user] = second.messages.slice(1);
  assert.equal(assistant.role, 'assistant');
  assert.equal(assistant.content.length, 1);
  const { type, id, name, input } = assistant.content[0];
  assert.deepEqual({ type, id, name, input }, { type: 'tool_use', id: call.id, name: 'get_weather', input: {} });
  assert.deepEqual(user, { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny, 21C' }] });
}

test('bindTools: a tool call round trip (invoke)', async () => {
  await toolRoundTrip(async (llm, msgs) => {
    const ai = await within(llm.invoke(msgs), T, 'invoke with tools');
    assert.equal(ai.response_metadata.stop_reason, 'tool_use');
    return ai;
  });
});

test('bindTools: a tool call round trip (the call streamed)', async () => {
  await toolRoundTrip(async (llm, msgs) => {
    const { chunks, full } = await fold(llm.stream(msgs), 'the tool call stream');
    assert.ok(chunks.some((c) => c.tool_call_chunks?.length > 0), 'tool_call_chunks streamed');
    return full;
  });
});

// withStructuredOutput's default method is "functionCalling": a tool named "extract" whose
// input_schema is the schema, forced with tool_choice {type: tool, name: extract}; the tool_use
// input is the object. The mock answers a forced tool with input {}, which only a schema whose
// fields are all optional accepts: the first test passes now, the second needs the mock (the
// structured output work) to fill a tool's input from its input_schema.
test('withStructuredOutput (default method): the forced tool round trip, a schema {} satisfies', async () => {
  const Loose = z.object({ name: z.string().optional(), age: z.number().optional() });
  const r = await within(chat().withStructuredOutput(Loose).invoke('a person'), T, 'withStructuredOutput');
  assert.deepEqual(r, {});
  const body = rec.last();
  assert.deepEqual(body.tool_choice, { type: 'tool', name: 'extract' });
  assert.deepEqual(body.tools.map((t) => t.name), ['extract']);
  assert.deepEqual(Object.keys(body.tools[0].input_schema.properties).sort(), ['age', 'name']);
});

const Person = z.object({ name: z.string(), age: z.number().int(), tags: z.array(z.string()) });

function assertPerson(object) {
  assert.deepEqual(Person.parse(object), object);
  assert.equal(typeof object.name, 'string');
  assert.ok(Number.isInteger(object.age));
  assert.ok(Array.isArray(object.tags));
}

/** The call's result, or an assertion error that says why there was none. */
async function settle(call, what) {
  const res = await within(call.then((r) => ({ r }), (e) => ({ e })), T, what);
  return () => {
    if (res.e) assert.fail(`${what} failed: ${res.e.name}: ${res.e.message.split('\n')[0]}`);
    return res.r;
  };
}

test('withStructuredOutput (default method): an object matching a schema with required fields', async () => {
  const result = await settle(chat().withStructuredOutput(Person, { name: 'person' }).invoke('a person with two tags'), 'withStructuredOutput');
  const body = rec.last();
  assert.deepEqual(body.tool_choice, { type: 'tool', name: 'person' });
  assert.deepEqual(body.tools[0].input_schema.required.slice().sort(), ['age', 'name', 'tags']);
  assertPerson(result());
});

test('withStructuredOutput (method jsonSchema: output_config.format): an object matching the schema', async () => {
  const result = await settle(chat().withStructuredOutput(Person, { method: 'jsonSchema' }).invoke('a person with two tags'), 'withStructuredOutput jsonSchema');
  const body = rec.last();
  assert.equal(body.output_config?.format?.type, 'json_schema');
  assert.deepEqual(body.output_config.format.schema.required.slice().sort(), ['age', 'name', 'tags']);
  assert.equal(body.tools, undefined);
  assertPerson(result());
});

async function assertHealthyAfterAbort(sc) {
  // Spool saw the disconnect and cancelled the internal job, which is then deleted.
  await waitIdle(sc, 1500);
  assert.equal((await sc.get('/health')).status, 200);
  const again = await within(chat({}, slow).invoke('still here'), T, 'an invoke after the abort');
  assert.equal(again.content, 'still here');
}

test('abort: a signal cancels a stream mid-way; the server cancels the job and stays healthy', async () => {
  const sc = client(slow.url);
  const ac = new AbortController();
  const prompt = words(200); // 10 s if not cancelled
  const pieces = [];
  let abortedAt = 0;
  let jobsWhileStreaming = null;
  await assert.rejects(within((async () => {
    for await (const ch of await chat({}, slow).stream(prompt, { signal: ac.signal })) {
      const t = typeof ch.content === 'string' ? ch.content : ch.content.map((b) => b.text ?? '').join('');
      if (t) pieces.push(t);
      if (pieces.length === 3 && !abortedAt) {
        jobsWhileStreaming = await activeJobs(sc);
        abortedAt = Date.now();
        ac.abort();
      }
    }
  })(), T, 'the aborted stream'), (e) => {
    assert.equal(e.name, 'AbortError', `${e.name}: ${e.message}`);
    return true;
  });
  const endedAfter = Date.now() - abortedAt;
  assert.equal(jobsWhileStreaming, 1, 'the job ran while LangChain read');
  assert.ok(endedAfter < 1000, `the stream ended ${endedAfter} ms after the abort`);
  assert.ok(pieces.length < 10, `${pieces.length} chunks: the reply was cut`);
  assert.ok(prompt.startsWith(pieces.join('')));
  await assertHealthyAfterAbort(sc);
});

test('abort: a signal cancels an invoke (not streamed) in flight', async () => {
  const sc = client(slow.url);
  const ac = new AbortController();
  const call = chat({}, slow).invoke(words(200), { signal: ac.signal });
  await within((async () => { while (await activeJobs(sc) !== 1) await new Promise((r) => setTimeout(r, 10)); })(),
    5000, 'the job to start');
  const abortedAt = Date.now();
  ac.abort();
  await assert.rejects(within(call, T, 'the aborted invoke'), (e) => {
    assert.equal(e.name, 'AbortError', `${e.name}: ${e.message}`);
    return true;
  });
  assert.ok(Date.now() - abortedAt < 1000, 'the invoke ended promptly');
  await assertHealthyAfterAbort(sc);
});
