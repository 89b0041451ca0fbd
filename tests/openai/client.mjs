// client.mjs - drives `grok serve` with the official openai npm client
// (completions and chat, whole and streamed, models, errors, think requests
// and their extra fields), so the server's answers are checked by the
// parser real applications use.
// Usage: GROK_URL=http://127.0.0.1:PORT/v1 GROK_KEY=KEY node client.mjs
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.GROK_URL, apiKey: process.env.GROK_KEY, maxRetries: 0 });
let checks = 0;
function check(cond, what, detail) {
  if (!cond) {
    console.error(`FAIL: ${what}${detail === undefined ? "" : ": " + JSON.stringify(detail)}`);
    process.exit(1);
  }
  checks++;
}

const models = await client.models.list();
const model = models.data[0]?.id;
check(typeof model === "string" && model.length > 0, "models.list gives a model id", models.data);

// completions, whole then streamed with the same seed: the same text
const params = { model, prompt: "The quick brown fox", max_tokens: 10, seed: 42, temperature: 0.8 };
const whole = await client.completions.create(params);
check(whole.object === "text_completion", "completion object", whole);
check(typeof whole.choices[0].text === "string", "completion text", whole);
check(["stop", "length"].includes(whole.choices[0].finish_reason), "completion finish_reason", whole);
check(whole.usage.total_tokens === whole.usage.prompt_tokens + whole.usage.completion_tokens, "usage", whole.usage);
let streamed = "", finish = null, chunks = 0;
for await (const chunk of await client.completions.create({ ...params, stream: true })) {
  chunks++;
  streamed += chunk.choices[0]?.text ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
check(chunks > 1, "completion stream has several chunks", chunks);
check(streamed === whole.choices[0].text, "streamed completion equals whole", { streamed, whole: whole.choices[0].text });
check(finish === whole.choices[0].finish_reason, "streamed finish_reason", finish);

// chat, whole then streamed with usage
const messages = [{ role: "system", content: "You are terse." }, { role: "user", content: "Say hello." }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 8, seed: 7 });
check(chat.object === "chat.completion", "chat object", chat);
check(chat.choices[0].message.role === "assistant" && typeof chat.choices[0].message.content === "string", "chat message", chat);
let content = "", role = null, usage = null;
const stream = await client.chat.completions.create({ model, messages, max_tokens: 8, seed: 7, stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const d = chunk.choices[0]?.delta;
  if (d?.role) role = d.role;
  content += d?.content ?? "";
}
check(role === "assistant", "chat stream announces the role", role);
check(content === chat.choices[0].message.content, "streamed chat equals whole", { content, whole: chat.choices[0].message.content });
check(usage && usage.completion_tokens === chat.usage.completion_tokens, "chat stream usage", usage);

// chat with logprobs and n
const lp = await client.chat.completions.create({ model, messages, max_tokens: 3, n: 2, logprobs: true, top_logprobs: 2 });
check(lp.choices.length === 2, "n=2 gives two choices", lp.choices.length);
check(lp.choices.every((c) => c.logprobs.content.length > 0 && c.logprobs.content.every((t) => t.logprob <= 0 && t.top_logprobs.length <= 2)), "chat logprobs", lp.choices[0].logprobs);

// think requests (docs/think.md): reasoning_effort is the client's own
// field; the think object goes in the body as is, and the response's extra
// think object reaches the application untouched
const thought = await client.chat.completions.create({ model, messages, max_tokens: 6, seed: 5, reasoning_effort: "low", think: { candidates: true } });
check(thought.choices.length === 1 && typeof thought.choices[0].message.content === "string", "think: one chosen choice", thought.choices);
// low is 4 samples, capped at this server's --parallel 2
check(thought.think && thought.think.samples === 2 && thought.think.candidates.length === 2, "think: the extra object is read", thought.think);
check(thought.think.candidates[thought.think.chosen].text === thought.choices[0].message.content, "think: the chosen candidate is the choice", thought.think);
check(thought.think.confidence >= 0 && thought.think.confidence <= 1, "think: confidence", thought.think.confidence);
let thinkText = "", progress = 0, finalThink = null;
for await (const chunk of await client.chat.completions.create({ model, messages, max_tokens: 6, seed: 5, reasoning_effort: "low", think: { candidates: true }, stream: true })) {
  if (chunk.choices.length === 0 && chunk.think) progress++;
  if (chunk.choices.length && chunk.think) finalThink = chunk.think;
  thinkText += chunk.choices[0]?.delta?.content ?? "";
}
check(progress > 0, "think stream: progress chunks with no choices pass through the client", progress);
check(thinkText === thought.choices[0].message.content, "think stream: the chosen text", { thinkText, whole: thought.choices[0].message.content });
check(finalThink && finalThink.chosen === thought.think.chosen, "think stream: the final chunk's think object", finalThink);
// a client that knows nothing of think sees an ordinary stream
let plain = "";
for await (const chunk of await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 5, seed: 3, think: { samples: 2 }, stream: true })) plain += chunk.choices[0]?.text ?? "";
check(typeof plain === "string", "think completion stream", plain);

// errors arrive as the client's typed errors
try {
  await client.completions.create({ model, prompt: "x", max_tokens: -1 });
  check(false, "max_tokens -1 must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400, "max_tokens -1 gives BadRequestError", String(e));
  check(e.param === "max_tokens", "error names the parameter", e.param);
}
const wrong = new OpenAI({ baseURL: process.env.GROK_URL, apiKey: "wrong", maxRetries: 0 });
try {
  await wrong.models.list();
  check(false, "a wrong key must fail");
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, "wrong key gives AuthenticationError", String(e));
}
console.log(`openai client: ${checks} checks passed`);
