// Browser test of the web demo: Debian's Chromium (never a downloaded browser) driven by
// puppeteer-core loads web/index.html from a server on 127.0.0.1, generates greedily
// from a fixed prompt through the page's controls, and checks the tokens against the
// native CLI's for the same model, prompt and seed.
//
// Tokens must match wherever the native top-2 logit margin exceeds TOLERANCE: positions
// are walked in order; at the first mismatch the test passes only if the native margin
// there is below the tolerance (two drivers may then pick different tokens, and the
// sequences diverge after it, so nothing later is compared), and fails otherwise. The
// browser's logits for the native sequence are compared too (max |difference| must stay
// below the tolerance). It fails if the page reports no WebGPU.
//
// Needs: web/build.sh run (web/pkg), the release CLI built (cargo build --release),
// `npm ci` here. Environment: FLASHCONV_BIN (default $CARGO_TARGET_DIR or target, then
// release/flashconv), CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default
// web/test/artifacts), SCREENSHOT_TO (also save the screenshot there, e.g. docs/web.png).
// Ends with the plain line "N passed, N failed".

import puppeteer from 'puppeteer-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve, repoRoot } from './serve.mjs';

const PROMPT = 'The ';
const MAX_TOKENS = 64;
const SEED = 7;
// Absolute tolerance on logits. Vulkan (lavapipe) vs GL (llvmpipe) logits differ by
// ~1e-6..1e-5 on this model (tests/determinism.rs); SwiftShader in Chromium runs the
// same f32 kernels through another compiler (Tint → SPIR-V → SwiftShader's LLVM JIT),
// measured here at the same order (printed below as "max |logit difference|"). 1e-3 is
// two orders above that and still far below the typical top-2 margin (~1 logit).
const TOLERANCE = 1e-3;
const TIMEOUT_MS = 240_000;

const artifacts = process.env.ARTIFACTS || path.join(repoRoot, 'web', 'test', 'artifacts');
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const bin = process.env.FLASHCONV_BIN ||
  path.join(process.env.CARGO_TARGET_DIR || path.join(repoRoot, 'target'), 'release', 'flashconv');

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
}

function native(args) {
  const out = execFileSync(bin, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(out);
}

// The f32 tensor `name` of a safetensors file (as `score --logits` writes it).
function readSafetensor(file, name) {
  const buf = fs.readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const t = header[name];
  if (!t || t.dtype !== 'F32') throw new Error(`${file}: no F32 tensor '${name}'`);
  const [begin, end] = t.data_offsets;
  const bytes = buf.subarray(8 + headerLen + begin, 8 + headerLen + end);
  const copy = new Uint8Array(bytes); // aligned copy
  return { shape: t.shape, data: new Float32Array(copy.buffer, 0, copy.length / 4) };
}

for (const [what, p] of [['the wasm package (run web/build.sh)', path.join(repoRoot, 'web', 'pkg', 'flashconv_bg.wasm')],
  ['the release CLI (cargo build --release)', bin], ['Chromium (apt-get install chromium)', chromium]]) {
  if (!fs.existsSync(p)) {
    console.error(`missing ${what}: ${p}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}
fs.mkdirSync(artifacts, { recursive: true });

// --- Native side: greedy tokens, then the logits and top-2 margins along them. ---
const gen = native(['generate', '--prompt', PROMPT, '--max-tokens', String(MAX_TOKENS),
  '--temperature', '0', '--seed', String(SEED), '--json', '--quiet']);
const nativeIds = gen.tokens;
const fullIds = [...gen.prompt_ids, ...nativeIds];
const logitsFile = path.join(artifacts, 'native-logits.safetensors');
const scored = native(['score', '--ids', fullIds.join(','), '--json', '--quiet', '--logits', logitsFile]);
const nativeLogits = readSafetensor(logitsFile, 'logits');
console.log(`native (${gen.adapter}): ${nativeIds.length} tokens, ${gen.tokens_per_second.toFixed(1)} tokens/s: ${JSON.stringify(gen.text)}`);

// --- Browser side. ---
const server = await serve(repoRoot, 0);
const url = `http://127.0.0.1:${server.address().port}/web/`;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flashconv-chromium-'));
const browser = await puppeteer.launch({
  executablePath: chromium,
  // Exactly these flags: puppeteer's defaults are dropped (it adds only its
  // --remote-debugging-port to talk to the browser).
  ignoreDefaultArgs: true,
  args: [
    '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-quic', `--user-data-dir=${userDataDir}`,
  ],
  defaultViewport: { width: 1100, height: 900 },
});
let exitCode = 1;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`  [page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(
    () => ['ready', 'no-webgpu', 'error'].includes(window.flashconv?.phase),
    { timeout: TIMEOUT_MS });
  const loaded = await page.evaluate(() => ({ phase: window.flashconv.phase, error: window.flashconv.error, adapter: window.flashconv.adapter }));
  check('page has WebGPU and loaded the model', loaded.phase === 'ready',
    loaded.phase === 'ready' ? loaded.adapter : `${loaded.phase}: ${loaded.error ?? await page.$eval('#status', (e) => e.textContent)}`);
  if (loaded.phase === 'ready') {
    // Stop: a long sampled run, stopped after its first batch.
    await page.$eval('#max-tokens', (e) => { e.value = '1000'; });
    await page.click('#generate');
    await page.waitForFunction(() => window.flashconv.phase !== 'generating' ||
      document.getElementById('output').textContent.length > 8, { timeout: TIMEOUT_MS });
    await page.click('#stop');
    await page.waitForFunction(() => ['done', 'error'].includes(window.flashconv.phase), { timeout: TIMEOUT_MS });
    const stopped = await page.evaluate(() => ({ error: window.flashconv.error, result: window.flashconv.result }));
    check('the stop button stops a generation', stopped.result?.stop === 'cancelled' && stopped.result.tokens.length < 1000,
      stopped.error ?? `stop: ${stopped.result?.stop}, ${stopped.result?.tokens.length} tokens`);

    // Generate through the page's own controls.
    await page.$eval('#prompt', (e, v) => { e.value = v; }, PROMPT);
    await page.$eval('#temperature', (e) => { e.value = '0'; e.dispatchEvent(new Event('input')); });
    await page.$eval('#max-tokens', (e, v) => { e.value = String(v); }, MAX_TOKENS);
    await page.$eval('#seed', (e, v) => { e.value = String(v); }, SEED);
    await page.click('#generate');
    await page.waitForFunction(() => ['done', 'error'].includes(window.flashconv.phase), { timeout: TIMEOUT_MS });
    const res = await page.evaluate(() => ({ phase: window.flashconv.phase, error: window.flashconv.error, result: window.flashconv.result }));
    check('browser generation finished', res.phase === 'done', res.error ?? '');
    const webIds = res.result?.tokens ?? [];
    if (res.result) {
      console.log(`browser (${loaded.adapter}): ${webIds.length} tokens, ${res.result.tokens_per_second.toFixed(1)} tokens/s, ` +
        `${(res.result.submits / Math.max(1, webIds.length)).toFixed(2)} submits per token`);
      console.log(`browser text: ${JSON.stringify(await page.evaluate((ids) => window.flashconv.model.decode(new Uint32Array(ids)), webIds))}`);
    }
    check('browser prompt ids equal the CLI\'s', JSON.stringify(res.result?.prompt_ids) === JSON.stringify(gen.prompt_ids));
    check(`browser generated ${MAX_TOKENS} tokens`, webIds.length === MAX_TOKENS, `got ${webIds.length}`);

    // The margin rule.
    const p0 = gen.prompt_ids.length;
    let matched = 0;
    let verdict = { ok: true, detail: '' };
    for (let i = 0; i < Math.min(nativeIds.length, webIds.length); i++) {
      if (nativeIds[i] === webIds[i]) { matched++; continue; }
      const margin = scored.top2_margins[p0 + i - 1];
      verdict = margin < TOLERANCE
        ? { ok: true, detail: `diverged at token ${i} where the native top-2 margin ${margin.toExponential(2)} < ${TOLERANCE}` }
        : { ok: false, detail: `token ${i}: browser ${webIds[i]}, native ${nativeIds[i]}, native top-2 margin ${margin.toExponential(2)} >= ${TOLERANCE}` };
      break;
    }
    const gen_margins = scored.top2_margins.slice(p0 - 1, p0 - 1 + nativeIds.length);
    const minMargin = Math.min(...gen_margins);
    check('greedy tokens equal the native CLI\'s (margin rule)', verdict.ok,
      `${matched}/${nativeIds.length} matched${verdict.detail ? '; ' + verdict.detail : ''}; smallest native margin ${minMargin.toExponential(2)}`);

    // The browser's logits for the native sequence against the CLI's.
    const web = await page.evaluate(async (ids) => {
      const r = await window.flashconv.model.score(new Uint32Array(ids));
      return { logits: Array.from(r.logits), vp: r.padded_vocab };
    }, fullIds);
    const [n, vp] = nativeLogits.shape;
    let maxDiff = 0;
    let where = -1;
    if (web.vp === vp && web.logits.length === n * vp) {
      for (let i = 0; i < n * vp; i++) {
        const d = Math.abs(web.logits[i] - nativeLogits.data[i]);
        if (d > maxDiff) { maxDiff = d; where = Math.floor(i / vp); }
      }
    } else {
      maxDiff = Infinity;
    }
    check('browser logits equal the CLI\'s within the tolerance', maxDiff < TOLERANCE,
      `max |logit difference| ${maxDiff.toExponential(2)} (position ${where}) over ${n} positions`);
  }
  if (loaded.phase === 'ready') {
    // A sampled run on the GPU (temperature 0.8, the page's default seed), as a person
    // would start it, for the screenshot.
    await page.$eval('#temperature', (e) => { e.value = '0.8'; e.dispatchEvent(new Event('input')); });
    await page.$eval('#max-tokens', (e) => { e.value = '300'; });
    await page.$eval('#seed', (e) => { e.value = '299792458'; });
    await page.click('#generate');
    await page.waitForFunction(() => ['done', 'error'].includes(window.flashconv.phase), { timeout: TIMEOUT_MS });
    const sampled = await page.evaluate(() => ({ error: window.flashconv.error, result: window.flashconv.result }));
    check('a sampled run (temperature 0.8) generates 300 tokens', sampled.result?.tokens.length === 300,
      sampled.error ?? `${sampled.result?.tokens.length} tokens, ${sampled.result?.tokens_per_second.toFixed(1)} tokens/s`);
  }
  const shot = path.join(artifacts, 'web.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  if (process.env.SCREENSHOT_TO) {
    fs.copyFileSync(shot, process.env.SCREENSHOT_TO);
    console.log(`screenshot copied to ${process.env.SCREENSHOT_TO}`);
  }
  exitCode = failed === 0 ? 0 : 1;
} catch (e) {
  failed++;
  console.log(`FAIL ${e.stack || e}`);
} finally {
  await browser.close().catch(() => {});
  server.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? exitCode : 1);
