// page.mjs - grok serve's chat page in a real browser (Debian's headless
// Chromium driven by playwright-core; run by tests/webui_test.sh). It loads
// the page from a server started with --api-key, gives the key when asked,
// sends a message and sees the answer stream in (and equal the API's answer
// for the same request), hovers a token and opens the layer x expert view,
// stops a long generation and checks that the server cancelled it, and
// reloads the page to find the conversation kept in localStorage.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const URL_ = process.env.GROK_URL, KEY = process.env.GROK_KEY, SHOT = process.env.GROK_SHOT;
let failures = 0;
const check = (cond, what) => {
  if (!cond) { failures++; console.log("FAIL: " + what); } else console.log("ok: " + what);
};
const api = async (path, body) => {
  const r = await fetch(URL_ + path, { method: body ? "POST" : "GET", body: body ? JSON.stringify(body) : undefined,
    headers: { Authorization: "Bearer " + KEY, "Content-Type": "application/json" } });
  return path === "/metrics" ? r.text() : r.json();
};
const metric = (text, name) => {
  const m = text.match(new RegExp("^" + name.replace(/[{}"=]/g, (c) => "\\" + c) + " (\\S+)$", "m"));
  return m ? Number(m[1]) : NaN;
};

// a fresh profile (--user-data-dir) each run; playwright passes it on. CI runs
// as root (Chromium's sandbox refuses root) in containers whose /dev/shm is
// small (Chromium's shared memory then goes to /tmp instead).
const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "grok-chromium-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/401/.test(m.text())) errors.push(m.text()); });

  // 1. the page asks for the key, then connects
  await page.goto(URL_ + "/");
  await page.waitForSelector("#key-dialog[open]", { timeout: 10000 });
  await page.fill("#key-input", KEY);
  await page.click("#key-ok");
  await page.waitForSelector("#status[data-ready='1']", { timeout: 10000 });
  check((await page.textContent("#status")).includes("bible-mini"), "connected with the key: " + (await page.textContent("#status")));

  // 2. settings, a system prompt, send, and watch the answer stream in
  await page.click("#settings-btn");
  await page.fill("#system", "The words of the LORD.");
  for (const [id, v] of [["temperature", "0.7"], ["top_p", "0.9"], ["top_k", "40"], ["min_p", "0.05"],
    ["max_tokens", "60"], ["seed", "7"], ["repeat_penalty", "1"]]) await page.fill("#" + id, v);
  await page.click("#settings-btn");
  check(!(await page.isVisible("#settings")), "the settings panel closes again");
  await page.fill("#input", "And God said unto Moses,");
  await page.evaluate(() => {
    window.__grows = 0;
    new MutationObserver(() => { window.__grows++; }).observe(document.getElementById("messages"),
      { childList: true, subtree: true, characterData: true });
  });
  await page.click("#send");
  await page.waitForFunction(() => {
    const c = JSON.parse(localStorage.getItem("grok.conversations") || "[]")[0];
    return c && c.messages.length === 2 && (c.messages[1].stats || c.messages[1].error) &&
      !document.getElementById("send").hidden;
  }, null, { timeout: 60000 });
  const answer = await page.evaluate(() => JSON.parse(localStorage.getItem("grok.conversations"))[0].messages[1]);
  check(answer.content.length > 20, "an answer arrived: " + JSON.stringify(answer.content.slice(0, 80)));
  check((await page.evaluate(() => window.__grows)) > 0, "the page showed it");
  const same = await api("/v1/chat/completions", { messages: [{ role: "system", content: "The words of the LORD." },
    { role: "user", content: "And God said unto Moses," }], temperature: 0.7, top_p: 0.9, top_k: 40, min_p: 0.05,
    max_tokens: 60, seed: 7, repeat_penalty: 1 });
  check(same.choices[0].message.content === answer.content, "the page's answer is the API's for the same request");
  const usage = same.usage;
  check(answer.routing && answer.routing.tokens.length === usage.completion_tokens - 1,
    `routing for every token fed back (${answer.routing && answer.routing.tokens.length} of ${usage.completion_tokens})`);
  check(/tok\/s/.test(await page.textContent("#speed")), "tok/s shown: " + (await page.textContent("#speed")));
  check((await page.textContent("#context-text")) === `context ${usage.total_tokens} / 2048`,
    "context use shown: " + (await page.textContent("#context-text")));

  // 3. the expert view: hover a token, open the heatmap
  const toks = await page.$$(".msg.assistant .tok");
  check(toks.length === answer.routing.tokens.length, `token spans: ${toks.length}`);
  const spans = await page.$$eval(".msg.assistant .body", (b) => b[0].textContent);
  check(spans.startsWith(answer.content), "the spans spell the answer");
  await page.click(".msg.assistant .experts-btn");
  const cells = await page.$$eval(".msg.assistant .heatmap .cell", (cs) => cs.map((c) => Number(c.textContent || 0)));
  const L = answer.routing.layers, E = answer.routing.experts, K = answer.routing.k;
  check(cells.length === L * E, `heatmap of ${L} layers x ${E} experts`);
  let rowsOk = true;
  for (let l = 0; l < L; l++) {
    const sum = cells.slice(l * E, (l + 1) * E).reduce((a, b) => a + b, 0);
    if (sum !== toks.length * K) rowsOk = false;
  }
  check(rowsOk, "each layer's row counts every token's K choices");
  await page.evaluate(() => { document.getElementById("settings").hidden = true; });
  await toks[3].hover();
  await page.waitForSelector("#tooltip:not([hidden])", { timeout: 3000 });
  const tip = await page.textContent("#tooltip");
  const t3 = answer.routing.tokens[3];
  check(tip.includes("layer 0") && tip.includes(`layer ${L - 1}`) && tip.includes(`${t3.e[0][0]} (${t3.g[0][0].toFixed(2)})`),
    "hovering a token shows its experts per layer");
  const on = await page.$$eval(".msg.assistant .heatmap .cell.on", (cs) => cs.length);
  check(on >= L && on <= L * K, `its cells are marked in the heatmap (${on})`);
  if (SHOT) await page.screenshot({ path: SHOT });
  await page.mouse.move(5, 5);

  // 4. stop a long generation: the server notices the closed connection
  const before = await api("/metrics");
  await page.evaluate(() => { document.getElementById("settings").hidden = false; });
  await page.fill("#max_tokens", "1900");
  await page.fill("#seed", "11");
  await page.fill("#input", "Tell me all the generations of Adam.");
  await page.click("#send");
  await page.waitForFunction(() => {
    const m = document.querySelectorAll(".msg.assistant");
    return m.length === 2 && m[1].querySelector(".body").textContent.length > 10;
  }, null, { timeout: 20000 });
  // text on the page while the request still runs: the answer streams in
  check(await page.isVisible("#stop") && !(await page.isVisible("#send")), "the answer streams in while it is generated");
  // On a quiet machine the bundled model can finish the whole answer
  // between the check above and the click: then the stop cannot be tested,
  // and the test says so rather than failing or passing silently.
  let clicked = true;
  try { await page.click("#stop", { timeout: 3000 }); } catch (e) { clicked = false; }
  if (!clicked) {
    console.log("SKIP stop: the answer was complete before Stop could be clicked");
  } else {
  await page.waitForSelector("#send:not([hidden])", { timeout: 5000 });
  let after = "", t0 = Date.now();
  for (; Date.now() - t0 < 5000;) {
    after = await api("/metrics");
    if (metric(after, "grok_slots_busy") === 0 &&
      metric(after, 'grok_requests_total{outcome="cancelled"}') > metric(before, 'grok_requests_total{outcome="cancelled"}')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  check(metric(after, 'grok_requests_total{outcome="cancelled"}') === metric(before, 'grok_requests_total{outcome="cancelled"}') + 1,
    "the server counted the stopped request as cancelled");
  check(metric(after, "grok_slots_busy") === 0, "and freed its slot within " + (Date.now() - t0) + " ms");
  const stopped = await page.evaluate(() => JSON.parse(localStorage.getItem("grok.conversations"))[0].messages[3]);
  check(stopped.stopped === true && stopped.note === "(stopped)", "the page marks the answer as stopped");
  check((await page.textContent(".msg.assistant:last-child")).includes("(stopped)"), "and shows it");
  }

  // 5. reload: the conversation is kept, with its expert record
  await page.reload();
  await page.waitForSelector("#status[data-ready='1']", { timeout: 10000 });
  check((await page.$$("#conversations li")).length === 1, "one conversation kept across a reload");
  check((await page.$$(".msg")).length === 4, "with its four messages");
  check((await page.$$(".msg.assistant:first-of-type .tok, .msg.assistant .tok")).length > 0, "and its token spans");
  await page.click("#new-chat");
  check((await page.$$("#conversations li")).length === 2 && (await page.$$(".msg")).length === 0, "a new chat starts empty");
  check(errors.length === 0, "no errors in the page: " + errors.join(" | "));
} finally {
  await ctx.close();
}
console.log(failures ? `webui page checks: ${failures} failed` : "webui page checks: all passed");
process.exit(failures ? 1 : 0);
