// Drives `contrail serve` with the official `openai` npm package (run by run.sh).
//
//   node client.mjs BASE_URL MODEL CHAT_BASE_URL CHAT_MODEL CHAT_API_KEY
//
// BASE_URL serves MODEL (a completion model without a chat template, no API key); CHAT_BASE_URL
// serves CHAT_MODEL (with a chat template) and requires CHAT_API_KEY. Both URLs end in /v1.
// Prints one line per check and a final "N passed, M failed"; exits 1 if any check failed.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, model, chatBaseURL, chatModel, chatKey] = process.argv.slice(2);
if (!chatKey) {
  console.error('usage: node client.mjs BASE_URL MODEL CHAT_BASE_URL CHAT_MODEL CHAT_API_KEY');
  process.exit(2);
}

// No retries: a 429/5xx must surface as a failure, not be hidden by the SDK's back-off.
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
const chat = new OpenAI({ baseURL: chatBaseURL, apiKey: chatKey, maxRetries: 0, timeout: 60_000 });
const PROMPT = 'Once upon a time';
const MESSAGES = [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: 'Name three colours.' },
];

function checkUsage(u, what) {
  assert.ok(u, `${what}: usage missing`);
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens'])
    assert.ok(Number.isInteger(u[k]) && u[k] >= 0, `${what}: usage.${k} = ${u[k]}`);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens, `${what}: total != prompt + completion`);
}

// Collects a streamed completion/chat: text per choice index, finish reasons, the usage chunk.
async function collect(stream, isChat) {
  const text = {}, finish = {}, roles = {};
  let usage = null, chunks = 0, id = null;
  for await (const chunk of stream) {
    ++chunks;
    id ??= chunk.id;
    assert.equal(chunk.id, id, 'every chunk carries the same id');
    assert.equal(chunk.object, isChat ? 'chat.completion.chunk' : 'text_completion');
    if (chunk.usage) {
      assert.equal(usage, null, 'one usage chunk');
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
      usage = chunk.usage;
      continue;
    }
    for (const c of chunk.choices) {
      const piece = isChat ? (c.delta.content ?? '') : c.text;
      assert.equal(typeof piece, 'string');
      text[c.index] = (text[c.index] ?? '') + piece;
      if (isChat && c.delta.role) {
        assert.equal(c.delta.role, 'assistant');
        assert.equal(roles[c.index], undefined, 'role is sent once, in the first delta');
        roles[c.index] = c.delta.role;
      }
      if (c.finish_reason) {
        assert.equal(finish[c.index], undefined, 'one finish_reason per choice');
        finish[c.index] = c.finish_reason;
      }
    }
  }
  return { text, finish, usage, chunks, roles };
}

async function metric(base, name) {
  const r = await fetch(new URL('/metrics', base));
  assert.equal(r.status, 200);
  const m = (await r.text()).match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
  assert.ok(m, `metric ${name} missing`);
  return Number(m[1]);
}

async function expectError(promise, Cls, status, check = () => {}) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof Cls, `expected ${Cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
    assert.ok(e instanceof OpenAI.APIError);
    assert.equal(e.status, status);
    check(e);
    return;
  }
  assert.fail(`expected ${Cls.name} (${status}), the call succeeded`);
}

const tests = [];
const test = (name, fn) => tests.push([name, fn]);

test('models.list (both servers)', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
  const page = await chat.models.list();
  assert.equal(page.data.length, 1);
  assert.equal(page.data[0].id, chatModel);
  assert.equal(page.data[0].object, 'model');
});

let greedy = null;  // the non-streamed greedy completion, compared with the streamed one
test('completions.create (non-stream, greedy)', async () => {
  const r = await client.completions.create({ model, prompt: PROMPT, max_tokens: 16, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, model);
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.ok(c.text.length > 0, 'non-empty text');
  assert.ok(['length', 'stop'].includes(c.finish_reason), c.finish_reason);
  checkUsage(r.usage, 'completion');
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 16);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 16);
  const again = await client.completions.create({ model, prompt: PROMPT, max_tokens: 16, temperature: 0 });
  assert.equal(again.choices[0].text, c.text, 'greedy decoding is deterministic');
  greedy = r;
});

test('completions.create (stream, include_usage) == non-stream', async () => {
  const stream = await client.completions.create({
    model, prompt: PROMPT, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  const s = await collect(stream, false);
  assert.equal(s.text[0], greedy.choices[0].text, 'concatenated deltas equal the non-streamed text');
  assert.equal(s.finish[0], greedy.choices[0].finish_reason);
  assert.deepEqual(s.usage, greedy.usage, 'streamed usage equals the non-streamed usage');
  checkUsage(s.usage, 'stream usage');
  assert.ok(s.chunks >= 2);
});

test('completions.create (stream without include_usage has no usage)', async () => {
  const s = await collect(await client.completions.create({ model, prompt: PROMPT, max_tokens: 4, temperature: 0, stream: true }), false);
  assert.equal(s.usage, null);
  assert.ok(greedy.choices[0].text.startsWith(s.text[0]), 'a prefix of the 16-token greedy text');
});

test('completions.create (n=2 seeded, logprobs, stop)', async () => {
  const body = { model, prompt: PROMPT, max_tokens: 12, temperature: 0.9, seed: 7, n: 2, logprobs: 2 };
  const r = await client.completions.create(body);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  checkUsage(r.usage, 'n=2');
  let tokens = 0;
  for (const c of r.choices) {
    const lp = c.logprobs;
    assert.ok(lp, 'logprobs present');
    assert.equal(lp.tokens.length, lp.token_logprobs.length);
    assert.equal(lp.tokens.join(''), c.text, 'logprob tokens spell the text');
    for (const v of lp.token_logprobs) assert.ok(v <= 0);
    for (const t of lp.top_logprobs) assert.ok(Object.keys(t).length >= 1 && Object.keys(t).length <= 2);
    tokens += lp.tokens.length;
  }
  assert.equal(r.usage.completion_tokens, tokens, 'completion_tokens counts both choices');
  const r2 = await client.completions.create(body);
  assert.deepEqual(r2.choices.map((c) => c.text), r.choices.map((c) => c.text), 'same seed, same texts');
  const s = await collect(await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }), false);
  assert.deepEqual([s.text[0], s.text[1]], r.choices.map((c) => c.text), 'streamed n=2 equals non-streamed');
  assert.deepEqual(s.usage, r.usage);
  // A stop string cuts the greedy text before its first occurrence and is not returned.
  const full = greedy.choices[0].text;
  const stop = full.slice(full.indexOf(' ', 2), full.indexOf(' ', 2) + 4);
  const st = await client.completions.create({ model, prompt: PROMPT, max_tokens: 16, temperature: 0, stop: [stop] });
  assert.equal(st.choices[0].finish_reason, 'stop');
  assert.equal(st.choices[0].text, full.slice(0, full.indexOf(stop)));
});

let chatGreedy = null;
test('chat.completions.create (non-stream, template model)', async () => {
  const r = await chat.chat.completions.create({ model: chatModel, messages: MESSAGES, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, chatModel);
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['length', 'stop'].includes(c.finish_reason), c.finish_reason);
  checkUsage(r.usage, 'chat');
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 12);
  // The prompt went through the template: more tokens than the bare message text alone.
  const bare = await fetch(new URL('/tokenize', chatBaseURL), {
    method: 'POST', headers: { Authorization: `Bearer ${chatKey}` }, body: JSON.stringify({ prompt: MESSAGES[1].content }),
  }).then((x) => x.json());
  assert.ok(r.usage.prompt_tokens > bare.count, `templated prompt ${r.usage.prompt_tokens} > ${bare.count}`);
  chatGreedy = r;
});

test('chat.completions.create (stream, include_usage) == non-stream', async () => {
  const stream = await chat.chat.completions.create({
    model: chatModel, messages: MESSAGES, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  const s = await collect(stream, true);
  assert.equal(s.roles[0], 'assistant', 'the first delta carries the role');
  assert.equal(s.text[0], chatGreedy.choices[0].message.content);
  assert.equal(s.finish[0], chatGreedy.choices[0].finish_reason);
  assert.deepEqual(s.usage, chatGreedy.usage);
});

test('chat.completions.create (logprobs, top_logprobs)', async () => {
  const r = await chat.chat.completions.create({
    model: chatModel, messages: MESSAGES, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3,
  });
  const content = r.choices[0].logprobs?.content;
  assert.ok(Array.isArray(content));
  assert.equal(content.length, r.usage.completion_tokens);
  assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
  }
});

test('errors: bad requests are BadRequestError 400', async () => {
  await expectError(client.completions.create({ model, prompt: PROMPT, temperature: 5 }), OpenAI.BadRequestError, 400,
    (e) => { assert.equal(e.param, 'temperature'); assert.equal(e.type, 'invalid_request_error'); });
  await expectError(client.completions.create({ model, prompt: PROMPT, max_tokens: 0, stream: true }),
    OpenAI.BadRequestError, 400, (e) => assert.equal(e.param, 'max_tokens'));
  await expectError(client.completions.create({ model: 'no-such-model', prompt: PROMPT }), OpenAI.BadRequestError, 400,
    (e) => assert.equal(e.code, 'model_not_found'));
  await expectError(client.chat.completions.create({ model, messages: MESSAGES }), OpenAI.BadRequestError, 400,
    (e) => assert.match(e.message, /chat template/));
  await expectError(chat.chat.completions.create({ model: chatModel, messages: [] }), OpenAI.BadRequestError, 400,
    (e) => assert.equal(e.param, 'messages'));
  await expectError(chat.chat.completions.create({ model: chatModel, messages: MESSAGES, max_tokens: 100000 }),
    OpenAI.BadRequestError, 400, (e) => assert.equal(e.code, 'context_length_exceeded'));
});

test('errors: a wrong API key is AuthenticationError 401', async () => {
  const wrong = new OpenAI({ baseURL: chatBaseURL, apiKey: `${chatKey}-wrong`, maxRetries: 0 });
  await expectError(wrong.chat.completions.create({ model: chatModel, messages: MESSAGES, max_tokens: 2 }),
    OpenAI.AuthenticationError, 401, (e) => assert.equal(e.code, 'invalid_api_key'));
  await expectError(wrong.chat.completions.create({ model: chatModel, messages: MESSAGES, max_tokens: 2, stream: true }),
    OpenAI.AuthenticationError, 401);
  await expectError(wrong.models.list(), OpenAI.AuthenticationError, 401);
  await expectError(wrong.completions.create({ model: chatModel, prompt: 'hi', max_tokens: 2 }), OpenAI.AuthenticationError, 401);
});

test('breaking out of a stream cancels the request (KV freed)', async () => {
  const stream = await client.completions.create({
    model, prompt: PROMPT, max_tokens: 1500, temperature: 0.8, seed: 1, stream: true, ignore_eos: true,
  });
  let n = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.choices.length, 1);
    if (++n === 3) break;  // the SDK aborts the HTTP request
  }
  assert.equal(n, 3);
  const base = new URL(baseURL).origin;
  let running = -1, used = -1;
  for (let i = 0; i < 100; ++i) {  // the server notices the disconnect on its next write
    running = await metric(base, 'contrail_num_requests_running');
    used = await metric(base, 'contrail_kv_blocks_used');
    if (running === 0 && used === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(running, 0, 'no request left running');
  assert.equal(used, 0, 'no KV blocks left in use');
  assert.ok((await metric(base, 'contrail_request_success_total\\{[^}]*finished_reason="disconnect"\\}')) >= 1);
});

let passed = 0, failed = 0;
for (const [name, fn] of tests) {
  const t0 = performance.now();
  try {
    await fn();
    ++passed;
    console.log(`ok   ${name} (${Math.round(performance.now() - t0)} ms)`);
  } catch (e) {
    ++failed;
    console.log(`FAIL ${name}\n${e?.stack ?? e}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
