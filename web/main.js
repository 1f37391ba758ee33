// The flashconv web demo: loads the wasm module (web/pkg, built by web/build.sh) and the
// model files, then streams generated text into the page. Plain ES module, no bundler.
//
// The model comes from `?model=URL_OF_DIRECTORY` (default: the bundled model under
// ../assets/, so serve the repository root). `window.flashconv` exposes the page's state
// to the browser test (web/test/test.mjs).

import init, { WebModel, GenerateParams } from './pkg/flashconv.js';

const $ = (id) => document.getElementById(id);
const state = {
  phase: 'starting', // starting | no-webgpu | loading | ready | generating | done | error
  error: null,
  adapter: null,
  model: null,
  result: null, // the last generation's statistics (tokens, tokens_per_second, ...)
};
window.flashconv = state;

function setStatus(phase, text) {
  state.phase = phase;
  const el = $('status');
  el.className = 'box ' + phase;
  el.textContent = text;
}

function fail(e) {
  const msg = e instanceof Error ? e.message : String(e);
  state.error = msg;
  setStatus('error', 'Error: ' + msg);
  console.error(e);
  $('generate').disabled = true;
  $('stop').disabled = true;
}

// fetch() with a progress callback (bytes received, total or 0 when unknown).
async function fetchBytes(url, onProgress) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`fetching ${url}: HTTP ${resp.status} ${resp.statusText}`);
  const total = Number(resp.headers.get('content-length')) || 0;
  if (!resp.body) return new Uint8Array(await resp.arrayBuffer());
  const reader = resp.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onProgress(got, total);
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

async function fetchText(url, optional) {
  const resp = await fetch(url);
  if (optional && resp.status === 404) return undefined;
  if (!resp.ok) throw new Error(`fetching ${url}: HTTP ${resp.status} ${resp.statusText}`);
  return resp.text();
}

const mib = (n) => (n / (1024 * 1024)).toFixed(1) + ' MiB';

async function load() {
  if (!('gpu' in navigator)) {
    setStatus('no-webgpu',
      'This browser has no WebGPU (navigator.gpu is missing), so the model cannot run here. ' +
      'Use a recent Chrome, Edge or Firefox with WebGPU turned on (Chromium on Linux: ' +
      'start it with --enable-unsafe-webgpu), served over http://localhost or https.');
    $('loading').hidden = true;
    return;
  }
  // What the browser says of its adapter (wgpu passes on only the description, which
  // software adapters leave empty); a null adapter means WebGPU is there but unusable.
  const probe = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!probe) {
    setStatus('no-webgpu',
      'This browser has WebGPU but gave no adapter (navigator.gpu.requestAdapter() returned ' +
      'null): the GPU is blocklisted or WebGPU is turned off (Chromium on Linux: start it ' +
      'with --enable-unsafe-webgpu).');
    $('loading').hidden = true;
    return;
  }
  const info = probe.info || {};
  const browserAdapter = [info.vendor, info.architecture, info.device, info.description]
    .filter(Boolean).join(' ') + (info.isFallbackAdapter ? ' (software fallback adapter)' : '');

  setStatus('loading', 'Loading the WebAssembly module…');
  await init();

  const params = new URLSearchParams(location.search);
  let base = params.get('model') || '../assets/hyena-rustbook-char/';
  if (!base.endsWith('/')) base += '/';
  setStatus('loading', `Downloading the model from ${base}…`);
  const [config, tokenizer] = await Promise.all([
    fetchText(base + 'config.json'),
    fetchText(base + 'tokenizer_config.json', true),
  ]);
  const weights = await fetchBytes(base + 'model.safetensors', (got, total) => {
    $('progress').max = total || got;
    $('progress').value = got;
    $('load-bytes').textContent = total ? `${mib(got)} of ${mib(total)}` : mib(got);
  });
  $('load-label').textContent = 'Downloaded';
  setStatus('loading', 'Requesting a WebGPU device and uploading the model…');
  const model = await WebModel.load(config, weights, tokenizer);
  state.model = model;
  state.adapter = [browserAdapter, model.adapter.trim()].filter(Boolean).join(' — ');
  $('adapter').textContent = state.adapter;
  $('model').textContent = model.summary;
  $('loading').hidden = true;
  setStatus('ready', 'Ready: type a prompt and press Generate.');
  $('generate').disabled = false;
}

async function generate() {
  const model = state.model;
  const p = new GenerateParams();
  p.temperature = Number($('temperature').value);
  p.max_tokens = Math.max(1, Math.floor(Number($('max-tokens').value) || 1));
  p.seed = Math.max(0, Math.floor(Number($('seed').value) || 0));
  p.tokens_per_submit = 16;
  const prompt = $('prompt').value;

  const out = $('output');
  out.textContent = '';
  const span = document.createElement('span');
  span.className = 'prompt';
  span.textContent = prompt;
  out.append(span);
  const generated = document.createTextNode('');
  out.append(generated);

  $('generate').disabled = true;
  $('stop').disabled = false;
  state.result = null;
  setStatus('generating', 'Generating…');
  const t0 = performance.now();
  let count = 0;
  try {
    const stats = await model.generate(prompt, p, (ids, text) => {
      count += ids.length;
      generated.appendData(text);
      const secs = (performance.now() - t0) / 1000;
      $('stats').textContent = `${count} tokens, ${(count / secs).toFixed(1)} tokens/s`;
    });
    state.result = stats;
    $('stats').textContent =
      `${stats.tokens.length} tokens in ${stats.generate_seconds.toFixed(2)} s: ` +
      `${stats.tokens_per_second.toFixed(1)} tokens/s (stopped: ${stats.stop}; ` +
      `${(stats.submits / Math.max(1, stats.tokens.length)).toFixed(2)} submits per token)`;
    setStatus('done', stats.stop === 'cancelled' ? 'Stopped.' : 'Done.');
  } catch (e) {
    fail(e);
    return;
  } finally {
    $('stop').disabled = true;
  }
  $('generate').disabled = false;
}

$('temperature').addEventListener('input', () => {
  $('temperature-value').textContent = Number($('temperature').value).toFixed(2);
});
$('generate').addEventListener('click', () => { generate(); });
$('stop').addEventListener('click', () => { state.model?.stop(); });

load().catch(fail);
