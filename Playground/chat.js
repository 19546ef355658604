// Chat: a conversation on /v1/chat/completions, streamed, with images and a stop button.
import { $, api, el, events, fillSelect, imageDataURL, showError } from './lib.js';

const log = $('chat-log');
const input = $('chat-input');
let history = [];       // the conversation as sent: {role, content}
let attachments = [];   // data URLs waiting for the next message
let running = null;     // the AbortController of the request in flight
let kinds = new Map();  // model id → kind

export function setModels(models) {
  // Language models, LLaVA, and upstream aliases (which may have another kind or none).
  const chatty = models.filter((m) => ['gguf', 'llava'].includes(m.kind) || !m.kind || (m.owned_by && m.owned_by !== 'chorus'));
  kinds = new Map(chatty.map((m) => [m.id, m.kind || 'upstream']));
  fillSelect($('chat-model'), chatty.map((m) => [m.id, `${m.id} (${m.kind || m.owned_by})`]),
    (chatty.find((m) => m.kind === 'llava') || chatty[0] || {}).id);
}

export function stop() { running?.abort(); }

// ---- attachments: the file button, drag and drop anywhere on the panel, paste into the message ----

async function attach(files) {
  for (const file of files) {
    if (!file.type.startsWith('image/')) continue;
    try {
      attachments.push(await imageDataURL(file));
    } catch (error) {
      showError($('chat-error'), error);
    }
  }
  renderAttachments();
}

function renderAttachments() {
  $('chat-attachments').replaceChildren(...attachments.map((url, i) => el('span', { class: 'thumb' },
    el('img', { src: url, alt: `Attached image ${i + 1}` }),
    el('button', { type: 'button', class: 'remove', 'aria-label': `Remove image ${i + 1}`, text: '×',
                   onclick: () => { attachments.splice(i, 1); renderAttachments(); } }))));
  const model = $('chat-model').value;
  $('chat-status').textContent = attachments.length && kinds.get(model) === 'gguf'
    ? `${model} reads text only: pick a LLaVA model for images.` : '';
}

$('chat-image').addEventListener('change', (event) => { attach(event.target.files); event.target.value = ''; });
const panel = $('panel-chat');
panel.addEventListener('dragover', (event) => { event.preventDefault(); panel.classList.add('dropping'); });
panel.addEventListener('dragleave', (event) => { if (event.target === panel) panel.classList.remove('dropping'); });
panel.addEventListener('drop', (event) => {
  event.preventDefault();
  panel.classList.remove('dropping');
  attach(event.dataTransfer.files);
});
input.addEventListener('paste', (event) => {
  const files = [...event.clipboardData.files].filter((f) => f.type.startsWith('image/'));
  if (files.length) { event.preventDefault(); attach(files); }
});

// Enter sends, Shift+Enter is a new line.
input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('chat-compose').requestSubmit();
  }
});

$('chat-new').addEventListener('click', () => {
  stop();
  history = [];
  log.replaceChildren(el('p', { class: 'empty', text: 'A new conversation.' }));
  showError($('chat-error'), null);
});

$('chat-stop').addEventListener('click', stop);

// ---- a turn ----

function bubble(role, who, text, images = []) {
  log.querySelector('.empty')?.remove();
  const body = el('div', { class: 'body', text });
  const node = el('div', { class: `msg ${role}` }, el('div', { class: 'who', text: who }),
    images.length ? el('div', { class: 'images' }, images.map((src) => el('img', { src, alt: 'Attached image' }))) : null,
    body, el('div', { class: 'meta' }));
  log.append(node);
  log.scrollTop = log.scrollHeight;
  return node;
}

$('chat-compose').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (running) return;
  const text = input.value.trim();
  if (!text && !attachments.length) return;
  const model = $('chat-model').value;
  const content = attachments.length
    ? [...attachments.map((url) => ({ type: 'image_url', image_url: { url } })), ...(text ? [{ type: 'text', text }] : [])]
    : text;
  bubble('user', 'You', text, attachments);
  const turn = { role: 'user', content };
  input.value = '';
  attachments = [];
  renderAttachments();
  showError($('chat-error'), null);

  const system = $('chat-system').value.trim();
  const messages = [...(system ? [{ role: 'system', content: system }] : []), ...history, turn];
  const answer = bubble('assistant', model, '');
  answer.dataset.state = 'waiting';
  const body = answer.querySelector('.body');
  const meta = answer.querySelector('.meta');
  meta.textContent = 'Waiting for the first token…';

  const controller = running = new AbortController();
  $('chat-stop').disabled = false;
  $('chat-send').disabled = true;
  $('chat-status').textContent = 'Generating…';
  const started = performance.now();
  let firstAt = 0, tokens = 0, finish = '', usage = null;
  try {
    const response = await api('/v1/chat/completions', { signal: controller.signal, json: {
      model, messages, stream: true, stream_options: { include_usage: true },
      max_tokens: Number($('chat-max-tokens').value) || undefined,
      temperature: Number($('chat-temperature').value),
    } });
    for await (const chunk of events(response, controller.signal)) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices && chunk.choices[0];
      if (!choice) continue;
      const piece = choice.delta && choice.delta.content;
      if (piece) {
        if (!tokens) { firstAt = performance.now(); answer.dataset.state = 'streaming'; }
        tokens++;
        body.textContent += piece;
        answer.dataset.tokens = tokens;
        meta.textContent = `${tokens} tokens…`;
        log.scrollTop = log.scrollHeight;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    answer.dataset.state = 'done';
    $('chat-status').textContent = '';
  } catch (error) {
    if (error.name === 'AbortError') {
      // Aborting the fetch closes the connection: the gateway cancels the generation.
      answer.dataset.state = 'stopped';
      finish = 'stopped by you';
      $('chat-status').textContent = 'Stopped.';
    } else {
      answer.dataset.state = 'error';
      showError($('chat-error'), error);
      $('chat-status').textContent = '';
    }
  } finally {
    running = null;
    $('chat-stop').disabled = true;
    $('chat-send').disabled = false;
  }
  const seconds = (performance.now() - started) / 1000;
  if (usage) tokens = usage.completion_tokens;  // the true count: byte tokens of one character come as one piece
  const rate = tokens > 1 && firstAt ? ` · ${((tokens - 1) / ((performance.now() - firstAt) / 1000)).toFixed(1)} tokens/s` : '';
  const cached = usage?.prompt_tokens_details?.cached_tokens ? `, ${usage.prompt_tokens_details.cached_tokens} cached` : '';
  const prompt = usage ? ` · prompt ${usage.prompt_tokens} tokens${cached}` : '';
  const why = { length: 'hit max tokens', stop: 'end of answer' }[finish] || finish;
  meta.textContent = answer.dataset.state === 'error' ? 'Failed.'
    : `${tokens} token${tokens === 1 ? '' : 's'} in ${seconds.toFixed(1)} s${rate}${prompt}${why ? ` · ${why}` : ''}`;
  if (answer.dataset.state === 'stopped') meta.prepend(el('strong', { text: 'Stopped. ' }));
  // Keep the turn (and what was said of the answer) so the next message continues the conversation.
  if (answer.dataset.state !== 'error') {
    history.push(turn);
    if (body.textContent) history.push({ role: 'assistant', content: body.textContent });
  } else if (!body.textContent) {
    answer.remove();
  }
  input.focus();
});
