// Shared helpers: the API (key, errors, server-sent events), DOM building, files and WAV audio.

const KEY_STORAGE = 'chorus-api-key';

/** The API key for this tab only: sessionStorage, never localStorage or cookies. */
export const apiKey = {
  get: () => sessionStorage.getItem(KEY_STORAGE) || '',
  set: (key) => key ? sessionStorage.setItem(KEY_STORAGE, key) : sessionStorage.removeItem(KEY_STORAGE),
};

/** An error from the API, with the message of its body ({"error": {"message", "type", "param", "code"}}). */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    const error = body && body.error;
    super(error && error.message ? error.message : fallback);
    this.status = status;
    this.type = error && error.type;
    this.param = error && error.param;
    this.code = error && error.code;
  }
}

// Set by the page: called on a 401 so the key prompt can come back whatever tab asked.
export const hooks = { unauthorized: () => {} };

/**
 * fetch on the gateway's own origin with the key. `json` becomes the body as JSON, `form` as multipart.
 * Answers the Response when it is ok; otherwise throws an ApiError in plain words.
 */
export async function api(path, { json, form, signal, method } = {}) {
  const headers = {};
  const key = apiKey.get();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method: method || (body ? 'POST' : 'GET'), headers, body, signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new Error(`Could not reach the gateway (${error.message}).`);
  }
  if (response.ok) return response;
  const text = await response.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { /* not JSON: use the status line */ }
  const error = new ApiError(response.status, parsed, `${response.status} ${response.statusText || ''} ${text.slice(0, 200)}`.trim());
  if (response.status === 401) hooks.unauthorized(error);
  throw error;
}

/** JSON.parse that keeps 64-bit seeds exact (as strings): a double would round them. */
export function parseJSON(text) {
  return JSON.parse(text, (key, value, context) =>
    key === 'seed' && typeof value === 'number' && context && context.source ? context.source : value);
}

/**
 * The events of a server-sent event stream (`data: {...}` blocks), until `[DONE]`. With `signal`, stops at
 * once when it is aborted, even with events still buffered: a stopped answer does not grow any more.
 */
export async function* events(response, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r/g, '');
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split('\n').filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, '')).join('\n');
        if (!data) continue;
        if (data === '[DONE]') return;
        if (signal?.aborted) throw new DOMException('The request was stopped.', 'AbortError');
        const event = parseJSON(data);
        // A stream that fails after it began says so in an event of the error body's shape.
        if (event.error && event.step === undefined) throw new ApiError(response.status, event, 'the stream failed');
        yield event;
      }
    }
  } finally {
    reader.cancel().catch(() => {});  // closes the connection when the reader stops early
  }
}

/** A POST /v1/pipelines with explicit steps, not streamed: answers {stepId: output}. */
export async function runSteps(steps, signal) {
  const response = await api('/v1/pipelines', { json: { stream: false, steps }, signal });
  return (await response.json()).steps;
}

/** The message to show for an error, in plain words. */
export function describe(error) {
  if (error instanceof ApiError) {
    return `${error.message} (${error.param ? `field ${error.param}, ` : ''}HTTP ${error.status})`;
  }
  return error && error.message ? error.message : String(error);
}

/** Shows `error` in the element (a role=alert box), or hides it when `error` is null. */
export function showError(element, error) {
  element.textContent = error ? describe(error) : '';
  element.hidden = !error;
}

/** `el('div', {class: 'x', onclick}, child, 'text')`: a small element builder. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'text') node.textContent = value;
    else if (name in node && typeof value !== 'string') node[name] = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

export const $ = (id) => document.getElementById(id);

/** Fills a <select> with [value, label] pairs, keeping the current choice when it is still offered. */
export function fillSelect(select, options, preferred) {
  const current = select.value;
  select.replaceChildren(...options.map(([value, label]) => el('option', { value, text: label })));
  const values = options.map(([value]) => value);
  if (values.includes(current)) select.value = current;
  else if (preferred !== undefined && values.includes(preferred)) select.value = preferred;
}

export const readAsDataURL = (blob) => new Promise((resolve, reject) => {
  const reader = new FileReader();
  reader.onload = () => resolve(reader.result);
  reader.onerror = () => reject(reader.error);
  reader.readAsDataURL(blob);
});

export const base64Of = (dataURL) => dataURL.slice(dataURL.indexOf(',') + 1);

export function bytesOfBase64(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export const blobOfBase64 = (base64, type) => new Blob([bytesOfBase64(base64)], { type });

/**
 * An image file as a data URL the services take (PNG or JPEG). Other formats, and images larger than
 * `maxSide`, are redrawn on a canvas: the request stays small and every service can decode it.
 */
export async function imageDataURL(file, maxSide = 1024) {
  const bitmap = await createImageBitmap(file).catch(() => {
    throw new Error(`${file.name || 'The file'} is not an image this browser can read.`);
  });
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  if (scale === 1 && /^image\/(png|jpeg)$/.test(file.type)) {
    bitmap.close();
    return readAsDataURL(file);
  }
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvas.toDataURL(file.type === 'image/png' ? 'image/png' : 'image/jpeg', 0.92);
}

/** Replaces an <a download>'s blob URL, releasing the old one. */
export function setDownload(link, blob, filename) {
  if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  link.hidden = false;
}

export const formatBytes = (bytes) => {
  if (!bytes && bytes !== 0) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = Number(bytes), unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(value < 10 && unit ? 1 : 0)} ${units[unit]}`;
};

export const formatSeconds = (seconds) => {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
};

// ---- WAV -------------------------------------------------------------------------------------------

/** A WAV file's format and sample bytes (16-bit PCM, which the speech service writes), or null. */
export function parseWAV(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') return null;
  let format = null;
  for (let at = 12; at + 8 <= bytes.length;) {
    const size = view.getUint32(at + 4, true);
    if (tag(at) === 'fmt ') {
      format = { code: view.getUint16(at + 8, true), channels: view.getUint16(at + 10, true),
                 rate: view.getUint32(at + 12, true), bits: view.getUint16(at + 22, true) };
    } else if (tag(at) === 'data' && format) {
      return { ...format, data: bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + size)) };
    }
    at += 8 + size + (size & 1);
  }
  return null;
}

/** A 16-bit PCM WAV file of the given sample bytes. */
export function wavOfPCM16(data, rate, channels = 1) {
  const header = new DataView(new ArrayBuffer(44));
  const text = (at, value) => [...value].forEach((c, i) => header.setUint8(at + i, c.charCodeAt(0)));
  text(0, 'RIFF'); header.setUint32(4, 36 + data.length, true); text(8, 'WAVE');
  text(12, 'fmt '); header.setUint32(16, 16, true); header.setUint16(20, 1, true);
  header.setUint16(22, channels, true); header.setUint32(24, rate, true);
  header.setUint32(28, rate * channels * 2, true); header.setUint16(32, channels * 2, true);
  header.setUint16(34, 16, true);
  text(36, 'data'); header.setUint32(40, data.length, true);
  return new Blob([header, data], { type: 'audio/wav' });
}

/** An AudioBuffer as a 16-bit mono WAV (channels mixed down). */
export function wavOfAudioBuffer(buffer) {
  const samples = new Int16Array(buffer.length);
  const channels = [...Array(buffer.numberOfChannels).keys()].map((c) => buffer.getChannelData(c));
  for (let i = 0; i < buffer.length; i++) {
    let sum = 0;
    for (const channel of channels) sum += channel[i];
    const value = Math.max(-1, Math.min(1, sum / channels.length));
    samples[i] = value < 0 ? value * 0x8000 : value * 0x7fff;
  }
  return wavOfPCM16(new Uint8Array(samples.buffer), buffer.sampleRate);
}

/**
 * Any audio the browser decodes (a recording, MP3, OGG …) as a 16 kHz mono WAV, what Whisper reads:
 * decodeAudioData, then an OfflineAudioContext resamples and mixes down.
 */
export async function toWAV(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (parseWAV(bytes)) return new Blob([bytes], { type: 'audio/wav' });
  const context = new AudioContext();
  let decoded;
  try {
    decoded = await context.decodeAudioData(bytes.buffer.slice(0));
  } catch {
    throw new Error('This audio could not be decoded by the browser; use a WAV file.');
  } finally {
    context.close();
  }
  const rate = 16000;
  const offline = new OfflineAudioContext(1, Math.max(1, Math.ceil(decoded.duration * rate)), rate);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  return wavOfAudioBuffer(await offline.startRendering());
}

/** Seconds of audio in a WAV file, from its header (null when it is not one). */
export function wavSeconds(bytes) {
  const wav = parseWAV(bytes);
  return wav ? wav.data.length / (wav.rate * wav.channels * (wav.bits / 8)) : null;
}
