// Images: text-to-image and img2img with a progress bar per step, latent previews, then the images.
import { $, api, blobOfBase64, el, events, fillSelect, imageDataURL, setDownload, showError } from './lib.js';

let kinds = new Map();      // model id → kind
let initImage = null;       // the img2img start image, a File
let running = null;
let stylesLoaded = false;

const SIZES = { 'consistency-unet': ['128x128'],
                'stable-diffusion': ['512x512', '512x768', '768x512', '768x768', '384x384', '256x256'] };

export function setModels(models) {
  const generators = models.filter((m) => ['consistency-unet', 'stable-diffusion'].includes(m.kind));
  kinds = new Map(generators.map((m) => [m.id, m.kind]));
  fillSelect($('img-model'), generators.map((m) => [m.id, `${m.id} (${m.kind === 'consistency-unet' ? 'terrain' : m.kind})`]));
  if (!generators.length) $('img-model-note').textContent = 'No image model is loaded.';
  modelChanged();
  loadStyles(generators.find((m) => m.kind === 'stable-diffusion'));
}

export function stop() { running?.abort(); }

function modelChanged() {
  const kind = kinds.get($('img-model').value);
  const terrain = kind === 'consistency-unet';
  // The terrain model takes no prompt, guidance or scheduler: hide what it would ignore.
  $('img-prompt-fields').hidden = terrain;
  $('img-difficulty-field').hidden = !terrain;
  for (const id of ['img-guidance', 'img-scheduler']) $(id).closest('label').hidden = terrain;
  $('img-model-note').textContent = terrain
    ? 'Terrain: a 128×128 16-bit heightmap from a consistency model; it ignores prompts, difficulty steers it.'
    : kind ? 'Stable Diffusion: a prompt is needed.' : $('img-model-note').textContent;
  fillSelect($('img-size'), (SIZES[kind] || ['512x512']).map((s) => [s, s.replace('x', ' × ')]));
}

/** The prompt styles come from the diffusion service (PromptPreview answers its library's names). */
async function loadStyles(model) {
  const box = $('img-styles');
  if (stylesLoaded) return;
  if (!model) { box.hidden = true; return; }
  try {
    const answer = await (await api('/v1/prompts/preview', { json: { model: model.id, prompt: 'x' } })).json();
    const names = (answer.styles || []).map((s) => (typeof s === 'string' ? s : s.name));
    box.replaceChildren(el('legend', { text: 'Styles' }), ...names.map((name) =>
      el('label', { class: 'chip' }, el('input', { type: 'checkbox', value: name }), ` ${name}`)));
    stylesLoaded = true;
  } catch {
    box.hidden = true;
  }
}

$('img-model').addEventListener('change', modelChanged);
$('img-strength').addEventListener('input', (e) => { $('img-strength-value').textContent = e.target.value; });
/** Sets (or clears) the img2img start image, with a thumbnail to remove it. */
async function setInitImage(blob) {
  initImage = blob;
  const thumbs = $('img-init-thumb');
  thumbs.replaceChildren();
  if (!blob) { $('img-init').value = ''; return; }
  $('img-init-box').open = true;
  thumbs.append(el('span', { class: 'thumb' }, el('img', { src: await imageDataURL(blob, 256), alt: 'Start image' }),
    el('button', { type: 'button', class: 'remove', 'aria-label': 'Remove the start image', text: '×', onclick: () => setInitImage(null) })));
}
$('img-init').addEventListener('change', (event) => setInitImage(event.target.files[0] || null));

/**
 * The terrain model starts only from a 16-bit grayscale heightmap (its own results are one): any other image is
 * drawn at `side` px, made gray, and written as such a PNG here (canvas can only write 8-bit RGBA).
 */
async function gray16PNG(blob, side) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  // Already a 16-bit gray PNG (bit depth 16, colour type 0 in IHDR): send it as it is.
  if (bytes[1] === 0x50 && bytes[24] === 16 && bytes[25] === 0) return blob;
  const bitmap = await createImageBitmap(blob);
  const canvas = Object.assign(document.createElement('canvas'), { width: side, height: side });
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0, side, side);
  const rgba = context.getImageData(0, 0, side, side).data;
  const raw = new Uint8Array(side * (1 + 2 * side));  // each row: filter byte 0, then big-endian samples
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const i = 4 * (y * side + x);
      const gray = Math.round(257 * (0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2]));
      const at = y * (1 + 2 * side) + 1 + 2 * x;
      raw[at] = gray >> 8;
      raw[at + 1] = gray & 255;
    }
  }
  const idat = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
  const header = new Uint8Array(13);
  new DataView(header.buffer).setUint32(0, side);
  new DataView(header.buffer).setUint32(4, side);
  header.set([16, 0, 0, 0, 0], 8);
  return new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
                   pngChunk('IHDR', header), pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array())], { type: 'image/png' });
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function pngChunk(type, data) {
  const chunk = new Uint8Array(12 + data.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, data.length);
  chunk.set([...type].map((c) => c.charCodeAt(0)), 4);
  chunk.set(data, 8);
  let crc = 0xffffffff;
  for (const byte of chunk.subarray(4, 8 + data.length)) crc = CRC_TABLE[(crc ^ byte) & 255] ^ (crc >>> 8);
  view.setUint32(8 + data.length, (crc ^ 0xffffffff) >>> 0);
  return chunk;
}

$('img-cancel').addEventListener('click', stop);

function setProgress(percent, label) {
  const bar = $('img-progress');
  bar.setAttribute('aria-valuenow', String(Math.round(percent)));
  bar.querySelector('.fill').style.width = `${percent}%`;
  if (label !== undefined) $('img-progress-label').textContent = label;
}

/** A number field's value, or undefined when it is empty (the service's default then). */
const numberOf = (id) => ($(id).value.trim() === '' || $(id).closest('[hidden]') ? undefined : Number($(id).value));

$('img-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (running) return;
  const model = $('img-model').value;
  const terrain = kinds.get(model) === 'consistency-unet';
  const seed = $('img-seed').value.trim();
  if (seed && !/^\d+$/.test(seed)) return showError($('img-error'), new Error('The seed is a whole number (or empty for a random one).'));
  const fields = {
    model, size: $('img-size').value, n: numberOf('img-n'), steps: numberOf('img-steps'),
    guidance_scale: numberOf('img-guidance'), preview_every: numberOf('img-preview-every'),
    ...(terrain ? { difficulty: numberOf('img-difficulty') } : {
      prompt: $('img-prompt').value, negative_prompt: $('img-negative').value,
      scheduler: $('img-scheduler').value || undefined,
      styles: [...$('img-styles').querySelectorAll('input:checked')].map((box) => box.value),
    }),
  };
  showError($('img-error'), null);
  $('img-results').replaceChildren();
  $('img-preview-box').hidden = true;
  setProgress(0, 'Starting…');
  const controller = running = new AbortController();
  $('img-generate').disabled = true;
  $('img-cancel').disabled = false;
  try {
    let response;
    if (initImage) {
      // img2img is a multipart form: numbers as text, styles comma-separated.
      const form = new FormData();
      const size = Number($('img-size').value.split('x')[0]) || 128;
      form.append('image', terrain ? await gray16PNG(initImage, size) : initImage, 'start.png');
      form.append('strength', $('img-strength').value);
      form.append('stream', 'true');
      if (seed) form.append('seed', seed);
      for (const [name, value] of Object.entries(fields)) {
        if (value === undefined || value === '' || (Array.isArray(value) && !value.length)) continue;
        form.append(name, Array.isArray(value) ? value.join(',') : String(value));
      }
      response = await api('/v1/images/edits', { form, signal: controller.signal });
    } else {
      // A 64-bit seed does not fit a double: JSON.rawJSON sends its digits as they are.
      const seedValue = seed ? (JSON.rawJSON ? JSON.rawJSON(seed) : Number(seed)) : undefined;
      response = await api('/v1/images/generations', { signal: controller.signal, json: { ...fields, seed: seedValue, stream: true } });
    }
    let took = '';
    for await (const message of events(response, controller.signal)) {
      if (message.type === 'progress') {
        took = ` in ${Number(message.elapsed_seconds || 0).toFixed(2)} s (${message.total} step${message.total === 1 ? '' : 's'})`;
        const percent = message.total ? (100 * message.step) / message.total : 0;
        setProgress(percent, `Step ${message.step} of ${message.total} · ${Number(message.elapsed_seconds || 0).toFixed(1)} s`);
      } else if (message.type === 'preview') {
        $('img-preview').src = `data:image/png;base64,${message.b64_json}`;
        $('img-preview-box').hidden = false;
      } else if (message.type === 'result') {
        setProgress(100, `Done${message.data.length > 1 ? `: ${message.data.length} images` : ''}${took}.`);
        showResults(message, model);
      }
    }
  } catch (error) {
    if (error.name === 'AbortError') setProgress(0, 'Cancelled.');
    else { setProgress(0, 'Failed.'); showError($('img-error'), error); }
  } finally {
    running = null;
    $('img-generate').disabled = false;
    $('img-cancel').disabled = true;
  }
});

function showResults(result, model) {
  $('img-preview-box').hidden = true;
  const seed = String(result.seed);
  $('img-results').replaceChildren(...result.data.map((image, i) => {
    const link = el('a', { class: 'button', text: 'Download' });
    setDownload(link, blobOfBase64(image.b64_json, 'image/png'), `${model}-${seed}${result.data.length > 1 ? `-${i + 1}` : ''}.png`);
    const useSeed = el('button', { type: 'button', class: 'quiet', text: 'Reuse seed',
                                   onclick: () => { $('img-seed').value = seed; $('img-seed').focus(); } });
    const useImage = el('button', { type: 'button', class: 'quiet', text: 'Start from it',
                                    onclick: () => setInitImage(blobOfBase64(image.b64_json, 'image/png')) });
    return el('figure', { class: 'result' },
      el('img', { src: `data:image/png;base64,${image.b64_json}`, alt: `Generated image ${i + 1}, seed ${seed}` }),
      el('figcaption', {},
        el('span', {}, 'Seed ', el('span', { class: 'seed', text: seed }), result.data.length > 1 ? ` · image ${i + 1}` : ''),
        el('span', { class: 'row' }, useSeed, useImage, link)),
      result.prompt ? el('p', { class: 'hint', text: `Prompt as run: ${result.prompt}` }) : null);
  }));
}
