// Drives a running `dsinfer serve` with the official openai npm client: node client.mjs BASE_URL MODEL.
// Exits non-zero (with the failed assertion) when the server does not behave as OpenAI's API.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'test-key', maxRetries: 0, timeout: 60_000 });

const messages = [{ role: 'user', content: 'Say hello.' }];

// Models
const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), [model]);

// Chat, non-streaming
const chat = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 });
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices[0].message.role, 'assistant');
assert.equal(typeof chat.choices[0].message.content, 'string');
assert.ok(['stop', 'length'].includes(chat.choices[0].finish_reason));
assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);

// Chat, streaming: the deltas add up to the non-streaming answer
const stream = await client.chat.completions.create({
  model, messages, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let streamed = '';
let finish = null;
let usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    streamed += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(streamed, chat.choices[0].message.content);
assert.equal(finish, chat.choices[0].finish_reason);
assert.equal(usage.completion_tokens, chat.usage.completion_tokens);

// Legacy completions, with logprobs and a stop string
const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 2 });
assert.equal(completion.object, 'text_completion');
assert.equal(completion.choices[0].logprobs.tokens.length, completion.usage.completion_tokens);

// Errors surface as the client's typed errors with the server's status
await assert.rejects(
  client.chat.completions.create({ model, messages, temperature: 5 }),
  (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature',
);
await assert.rejects(
  client.chat.completions.create({ model: 'no-such-model', messages }),
  (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
);
const unauthorized = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
await assert.rejects(unauthorized.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);

console.log('openai client: all checks passed');
