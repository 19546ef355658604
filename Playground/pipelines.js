// Pipelines: run a built-in recipe on POST /v1/pipelines and draw each step on a timeline as it finishes.
import { $, api, el, events, imageDataURL, readAsDataURL, showError, toWAV } from './lib.js';

// The gateway's recipes (Sources/Gateway/Pipelines/Recipes.swift): media they read and named inputs
// with a starting value; an empty input is left out so the recipe's default applies.
const RECIPES = {
  'zero-shot': { summary: 'image + labels → CLIP probabilities', media: ['image'], inputs: { labels: '["a cat", "a dog"]' } },
  'describe-and-speak': { summary: 'image → caption (LLaVA) → speech', media: ['image'], inputs: {} },
  'spoken-question': { summary: 'audio question (+ image) → transcript → answer → speech', media: ['audio', 'image'],
                       optional: ['image'], inputs: { max_tokens: '', upstream_model: '' } },
  'transcribe-and-illustrate': { summary: 'audio → transcript → image', media: ['audio'], inputs: {} },
  'craft-and-generate': { summary: 'subject + style (+ expand by a language model) → prompt → image', media: [],
                          inputs: { subject: 'a lighthouse at dusk', style: '', expand: '', seed: '', steps: '', model: '' } },
  augment: { summary: 'image → caption → img2img variants', media: ['image'], inputs: { variants: '3', strength: '0.5' } },
  'sketch-to-image': { summary: 'image → Canny edges → ControlNet image', media: ['image'],
                       inputs: { prompt: '', controlnet: '', low: '', high: '', scale: '', seed: '', steps: '', model: '' } },
  'video-qa': { summary: 'video + question → frame captions ‖ transcript → answer', media: ['video'],
                inputs: { question: 'What happens in this video?', num_frames: '', caption_tokens: '', max_tokens: '', model: '', answer_model: '' } },
  'describe-video': { summary: 'video → frame captions ‖ transcript (SRT) → timestamped summary', media: ['video'],
                      inputs: { num_frames: '', caption_tokens: '', max_tokens: '', model: '', answer_model: '' } },
};

let running = null;

const select = $('pipe-recipe');
select.replaceChildren(...Object.keys(RECIPES).map((name) => el('option', { value: name, text: name })));

function recipeChanged() {
  const recipe = RECIPES[select.value];
  $('pipe-summary').textContent = recipe.summary;
  for (const kind of ['image', 'audio', 'video']) {
    const field = $(`pipe-${kind}-field`);
    field.hidden = !recipe.media.includes(kind);
    field.firstChild.textContent = `${{ image: 'Image', audio: 'Audio', video: 'Video' }[kind]}${recipe.optional?.includes(kind) ? ' (optional)' : ''} `;
  }
  $('pipe-fields').replaceChildren(...Object.entries(recipe.inputs).map(([name, value]) =>
    el('label', {}, `${name.replace(/_/g, ' ')} `, el('input', { 'data-input': name, id: `pipe-in-${name}`, value, placeholder: 'default', autocomplete: 'off' }))));
}
select.addEventListener('change', recipeChanged);
recipeChanged();

export function stop() { running?.abort(); }
$('pipe-cancel').addEventListener('click', stop);

// ---- rendering a step's output ----

const MEDIA = [['UklGR', 'audio', 'audio/wav'], ['iVBORw0KGgo', 'img', 'image/png'], ['/9j/', 'img', 'image/jpeg']];

/** The output with long base64 strings elided to their size; WAV/PNG/JPEG ones collected to show. */
function elide(value, media) {
  if (typeof value === 'string' && value.length > 160 && /^[A-Za-z0-9+/=\s]+$/.test(value.slice(0, 400))) {
    const kind = MEDIA.find(([prefix]) => value.startsWith(prefix));
    // A streaming step's output repeats its last event under `events`: show each medium once.
    const src = kind && `data:${kind[2]};base64,${value}`;
    if (kind && !media.some(([, seen]) => seen === src)) media.push([kind[1], src]);
    return `‹base64, ${Math.round((value.length * 3) / 4).toLocaleString()} bytes›`;
  }
  if (Array.isArray(value)) return value.map((item) => elide(item, media));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, elide(v, media)]));
  return value;
}

/** A line or two of what a step answered: its text, its labels, or its sizes. */
function gist(output) {
  if (!output) return '';
  if (typeof output.text === 'string' && output.text) return output.text;
  if (output.result && typeof output.result.text === 'string') return output.result.text;
  if (Array.isArray(output.labels)) return output.labels.map((l) => `${l.label} ${(100 * (l.probability || 0)).toFixed(1)} %`).join(' · ');
  return '';
}

function drawTimeline() {
  const rows = [...$('pipe-timeline').children];
  const end = Math.max(1, ...rows.map((row) => Number(row.dataset.finished || 0)));
  for (const row of rows) {
    const start = Number(row.dataset.started || 0), finish = Number(row.dataset.finished || start);
    const bar = row.querySelector('.bar');
    bar.style.left = `${(100 * start) / end}%`;
    bar.style.width = `${Math.max(0.5, (100 * (finish - start)) / end)}%`;
  }
}

function addStep(message) {
  const media = [];
  const failed = Boolean(message.error);
  const output = failed ? message.error : elide(message.output, media);
  const started = Math.round(message.started_ms ?? 0), finished = Math.round(message.finished_ms ?? started);
  const row = el('li', { class: `step${failed ? ' failed' : ''}`, 'data-step': message.step, 'data-state': failed ? 'failed' : 'done',
                         'data-started': started, 'data-finished': finished },
    el('div', { class: 'step-head' },
      el('strong', { class: 'name', text: message.step }),
      el('span', { class: 'time', text: failed ? 'failed' : `${started}–${finished} ms (${finished - started} ms)` })),
    el('div', { class: 'track', 'aria-hidden': 'true' }, el('div', { class: 'bar' })),
    failed ? el('p', { class: 'error', text: message.error.message || 'failed' }) : null,
    !failed && gist(message.output) ? el('p', { class: 'gist', text: gist(message.output) }) : null,
    media.length ? el('div', { class: 'media' }, media.map(([tag, src]) => el(tag, tag === 'audio' ? { src, controls: true } : { src, alt: `${message.step} output` }))) : null,
    el('details', {}, el('summary', { text: failed ? 'Error' : 'Output' }), el('pre', { text: JSON.stringify(output, null, 2) })));
  $('pipe-timeline').append(row);
  drawTimeline();
}

$('pipe-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (running) return;
  const name = select.value;
  const recipe = RECIPES[name];
  const body = { recipe: name, stream: true, inputs: {} };
  for (const input of $('pipe-fields').querySelectorAll('[data-input]')) {
    if (input.value.trim() !== '') body.inputs[input.dataset.input] = input.value.trim();
  }
  showError($('pipe-error'), null);
  try {
    for (const kind of recipe.media) {
      const file = $(`pipe-${kind}`).files[0];
      if (!file) {
        if (recipe.optional?.includes(kind)) continue;
        throw new Error(`${name} needs ${kind === 'audio' ? 'an audio file' : `an ${kind}`}.`);
      }
      if (kind === 'image') body.images = [await imageDataURL(file)];
      if (kind === 'audio') body.audio = [await readAsDataURL(await toWAV(file))];
      if (kind === 'video') body.videos = [await readAsDataURL(file)];
    }
  } catch (error) {
    return showError($('pipe-error'), error);
  }
  $('pipe-timeline').replaceChildren();
  $('pipe-status').textContent = `Running ${name}…`;
  const controller = running = new AbortController();
  $('pipe-run').disabled = true;
  $('pipe-cancel').disabled = false;
  const started = performance.now();
  let steps = 0, failures = 0;
  try {
    const response = await api('/v1/pipelines', { json: body, signal: controller.signal });
    for await (const message of events(response, controller.signal)) {
      if (message.step === undefined) continue;
      steps++;
      if (message.error) failures++;
      addStep(message);
      $('pipe-status').textContent = `Running ${name}… ${steps} step${steps === 1 ? '' : 's'} finished.`;
    }
    $('pipe-status').textContent = `${name}: ${steps} step${steps === 1 ? '' : 's'}${failures ? `, ${failures} failed` : ''} in ${((performance.now() - started) / 1000).toFixed(2)} s.`;
  } catch (error) {
    $('pipe-status').textContent = error.name === 'AbortError' ? 'Cancelled.' : 'Failed.';
    if (error.name !== 'AbortError') showError($('pipe-error'), error);
  } finally {
    running = null;
    $('pipe-run').disabled = false;
    $('pipe-cancel').disabled = true;
  }
});
