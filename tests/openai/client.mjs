// client.mjs - drives `grok serve` with the official openai npm client
// (completions and chat, whole and streamed, models, errors; structured
// output with response_format and tools: parse(), the stream helper's
// accumulated tool calls, runTools sending tool results back; think requests
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


// ---- structured output: response_format json_schema through parse()
const schema = {
  type: "object",
  properties: { word: { type: "string", maxLength: 12 }, n: { type: "integer", minimum: 0, maximum: 9 }, ok: { type: "boolean" } },
  required: ["word", "n", "ok"],
  additionalProperties: false,
};
const rf = { type: "json_schema", json_schema: { name: "record", schema, strict: true } };
// one seed under the sanitizers (GROK_ASAN=1), where every generated token costs ~10x
for (const seed of process.env.GROK_ASAN === "1" ? [1] : [1, 2, 3]) {
  const parsed = await client.chat.completions.parse({ model, messages, max_tokens: 300, seed, response_format: rf });
  const c = parsed.choices[0];
  check(c.finish_reason === "stop", "json_schema answer completes", c);
  const v = c.message.parsed;
  check(v && typeof v.word === "string" && v.word.length <= 12 && Number.isInteger(v.n) && v.n >= 0 && v.n <= 9 &&
        typeof v.ok === "boolean" && Object.keys(v).length === 3, "parsed value follows the schema", v);
}
// json_object: a random model may write an object longer than max_tokens, so every answer that
// completes must be an object and at least one of the seeds must complete
let joDone = 0;
for (const seed of [5, 6, 7]) {
  const jo = await client.chat.completions.create({ model, messages, max_tokens: 400, seed, response_format: { type: "json_object" } });
  check(["stop", "length"].includes(jo.choices[0].finish_reason), "json_object finish_reason", jo.choices[0]);
  if (jo.choices[0].finish_reason !== "stop") continue;
  joDone++;
  const v = JSON.parse(jo.choices[0].message.content);
  check(v !== null && typeof v === "object" && !Array.isArray(v), "json_object gives an object", v);
}
check(joDone > 0, "some json_object answer completes within max_tokens", joDone);
// llama.cpp's json_schema field on completions, passed through as an extra body field
const cs = await client.completions.create({ model, prompt: "Data:", max_tokens: 300, seed: 4, json_schema: schema });
check(cs.choices[0].finish_reason === "stop" && JSON.parse(cs.choices[0].text).n <= 9, "completions json_schema", cs.choices[0]);

// ---- tools
const weather = { type: "object", properties: { city: { type: "string", maxLength: 10 }, unit: { enum: ["C", "F"] } }, required: ["city", "unit"], additionalProperties: false };
const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: weather, strict: true } },
  { type: "function", function: { name: "get_time", description: "The time now", parameters: { type: "object", properties: {}, additionalProperties: false }, strict: true } },
];
const ask = [{ role: "user", content: "What is the weather in Paris?" }];
const named = { type: "function", function: { name: "get_weather" } };
const tc = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: named, max_tokens: 300, seed: 9 });
const call = tc.choices[0].message.tool_calls?.[0];
check(tc.choices[0].finish_reason === "tool_calls" && tc.choices[0].message.content === null, "tool answer: finish_reason tool_calls, content null", tc.choices[0]);
check(call && call.type === "function" && call.id.startsWith("call_") && call.function.name === "get_weather", "tool_calls shape", call);
const args = JSON.parse(call.function.arguments);
check(typeof args.city === "string" && args.city.length <= 10 && ["C", "F"].includes(args.unit) && Object.keys(args).length === 2, "arguments follow the parameters", args);
const tp = await client.chat.completions.parse({ model, messages: ask, tools, tool_choice: "required", max_tokens: 300, seed: 9, parallel_tool_calls: false });
const pc = tp.choices[0].message.tool_calls;
check(pc.length === 1 && pc[0].function.parsed_arguments && typeof pc[0].function.parsed_arguments === "object", "parse() gives parsed_arguments", pc);

// auto: either text without the call tag, or well-formed calls with finish_reason tool_calls
for (const seed of [1, 2, 3, 4]) {
  const a = (await client.chat.completions.create({ model, messages: ask, tools, max_tokens: 60, seed })).choices[0];
  if (a.message.tool_calls?.length) {
    check(a.finish_reason === "tool_calls" && a.message.tool_calls.every((k) => ["get_weather", "get_time"].includes(k.function.name) &&
          typeof JSON.parse(k.function.arguments) === "object"), "auto: calls are well-formed", a);
  } else {
    check(typeof a.message.content === "string" && !a.message.content.includes("<tool_call>") &&
          ["stop", "length"].includes(a.finish_reason), "auto: text without a stray tag", a);
  }
}
// none: the tools are left out and nothing is called
const tn = (await client.chat.completions.create({ model, messages: ask, tools, tool_choice: "none", max_tokens: 20, seed: 1 })).choices[0];
check(!tn.message.tool_calls?.length && tn.finish_reason !== "tool_calls" && typeof tn.message.content === "string", "tool_choice none: a plain answer", tn);

// the stream helper accumulates the tool-call deltas into the same answer
const st = client.chat.completions.stream({ model, messages: ask, tools, tool_choice: named, max_tokens: 300, seed: 9 });
let argDeltas = 0;
st.on("tool_calls.function.arguments.delta", () => argDeltas++);
const fin = await st.finalChatCompletion();
const sc = fin.choices[0].message.tool_calls?.[0];
check(sc && sc.function.name === "get_weather" && sc.function.arguments === call.function.arguments, "streamed tool call equals the whole one", { sc, call });
check(fin.choices[0].finish_reason === "tool_calls" && argDeltas > 1, "streamed arguments come in pieces", { argDeltas, finish: fin.choices[0].finish_reason });

// runTools: calls the functions, sends their results back as tool messages, asks again
const called = [];
const runner = client.chat.completions.runTools(
  {
    model, messages: ask, tool_choice: "required", max_tokens: 300, seed: 2,
    tools: [
      { type: "function", function: { name: "get_weather", parameters: weather, parse: JSON.parse, function: (a) => { called.push(a); return { temp: 21, unit: a.unit }; } } },
      { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} }, parse: JSON.parse, function: () => { called.push("time"); return "12:00"; } } },
    ],
  },
  { maxChatCompletions: 2 },
);
await runner.done();
const toolMsgs = runner.messages.filter((m) => m.role === "tool");
check(called.length >= 2 && toolMsgs.length === called.length, "runTools ran the calls of two answers and sent the results back", { called, n: toolMsgs.length });

// errors name the place
try {
  await client.chat.completions.create({ model, messages, max_tokens: 4, grammar: "root ::= (\"a\"" });
  check(false, "a bad grammar must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "grammar" && /1:10/.test(e.message), "bad grammar: BadRequestError naming 1:10", String(e));
}
try {
  await client.chat.completions.create({ model, messages, max_tokens: 4, response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "string", pattern: "x" } } } } } });
  check(false, "an unsupported schema must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "response_format" && e.message.includes("#/properties/a"), "bad schema: BadRequestError naming the pointer", String(e));
}

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
