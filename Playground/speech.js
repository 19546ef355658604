// Speech to text (upload or record, segments as they are decoded, SRT/VTT) and text to speech
// (a voice from ListVoices, playback from the first sentence on).
import {
  $, api, bytesOfBase64, el, events, fillSelect, parseWAV, runSteps, setDownload, showError, toWAV, wavOfPCM16, wavSeconds,
} from './lib.js';

// ===================================== speech to text =====================================

let audio = null;        // the WAV to send: {blob, seconds, name}
let recorder = null;     // the MediaRecorder while recording
let transcribing = null; // AbortController
let segments = [];

function setAudio(blob, name) {
  audio = { blob, name, seconds: null };
  blob.arrayBuffer().then((buffer) => { audio.seconds = wavSeconds(new Uint8Array(buffer)); });
  const player = $('stt-audio');
  if (player.src.startsWith('blob:')) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
  $('stt-status').textContent = `${name} is ready: press Transcribe.`;
}

$('stt-file').addEventListener('change', async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  showError($('stt-error'), null);
  try {
    setAudio(await toWAV(file), file.name);  // WAV stays as it is; other formats are decoded here
  } catch (error) {
    showError($('stt-error'), error);
  }
});

$('stt-record').addEventListener('click', async () => {
  const button = $('stt-record');
  if (recorder) { recorder.stop(); return; }
  showError($('stt-error'), null);
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError($('stt-error'), new Error(`The microphone is not available (${error.message}).`));
    return;
  }
  const pieces = [];
  recorder = new MediaRecorder(stream);
  const type = recorder.mimeType;
  recorder.ondataavailable = (e) => pieces.push(e.data);
  const started = Date.now();
  const timer = setInterval(() => { $('stt-rec-time').textContent = `Recording… ${((Date.now() - started) / 1000).toFixed(0)} s`; }, 250);
  recorder.onstop = async () => {
    clearInterval(timer);
    stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    button.textContent = 'Record from microphone';
    button.setAttribute('aria-pressed', 'false');
    $('stt-rec-time').textContent = 'Converting to WAV…';
    try {
      // MediaRecorder gives WebM/Opus: decode it and write 16 kHz 16-bit mono WAV, what Whisper reads.
      setAudio(await toWAV(new Blob(pieces, { type })), 'recording.wav');
      $('stt-rec-time').textContent = `Recorded ${((Date.now() - started) / 1000).toFixed(1)} s.`;
    } catch (error) {
      $('stt-rec-time').textContent = '';
      showError($('stt-error'), error);
    }
  };
  recorder.start(250);
  button.textContent = 'Stop recording';
  button.setAttribute('aria-pressed', 'true');
});

$('stt-cancel').addEventListener('click', () => transcribing?.abort());

const clock = (seconds, separator) => {
  const ms = Math.round(seconds * 1000);
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
};
const shortClock = (seconds) => `${Math.floor(seconds / 60)}:${(seconds % 60).toFixed(1).padStart(4, '0')}`;

function srt(list) {
  return list.map((s, i) => `${i + 1}\n${clock(s.start, ',')} --> ${clock(s.end, ',')}\n${s.text.trim()}\n`).join('\n');
}
function vtt(list) {
  return `WEBVTT\n\n${list.map((s) => `${clock(s.start, '.')} --> ${clock(s.end, '.')}\n${s.text.trim()}\n`).join('\n')}`;
}

function segmentItem(segment) {
  const words = segment.words && segment.words.length
    ? segment.words.map((w) => [w.word.match(/^\s*/)[0], el('span', {  // the space stays outside the word's mark
      class: `word${w.probability !== undefined && w.probability < 0.5 ? ' unsure' : ''}`, text: w.word.trim(),
      title: `${w.start.toFixed(2)}–${w.end.toFixed(2)} s${w.probability !== undefined ? `, p = ${w.probability.toFixed(2)}` : ''}`,
    })])
    : [segment.text.trim()];
  return el('li', { class: 'segment' },
    el('span', { class: 'time', text: `${shortClock(segment.start)} → ${shortClock(segment.end)}` }),
    el('span', { class: 'text' }, words));
}

function sttProgress(seconds) {
  const total = audio && audio.seconds;
  const percent = total ? Math.min(100, (100 * seconds) / total) : 0;
  $('stt-progress').setAttribute('aria-valuenow', String(Math.round(percent)));
  $('stt-progress').querySelector('.fill').style.width = `${percent}%`;
}

function showSegments(list) {
  segments = list;
  $('stt-segments').replaceChildren(...list.map(segmentItem));
}

$('stt-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (transcribing) return;
  if (!audio) return showError($('stt-error'), new Error('Choose an audio file or record one first.'));
  const translate = $('stt-translate').checked;
  const form = new FormData();
  form.append('file', audio.blob, audio.name.replace(/\.[^.]*$/, '') + '.wav');
  if ($('stt-model').value) form.append('model', $('stt-model').value);
  if ($('stt-language').value.trim()) form.append('language', $('stt-language').value.trim());
  form.append('response_format', 'verbose_json');
  if ($('stt-words').checked) form.append('timestamp_granularities[]', 'word');
  if (!translate) form.append('stream', 'true');

  showError($('stt-error'), null);
  showSegments([]);
  sttProgress(0);
  for (const id of ['stt-srt', 'stt-vtt', 'stt-txt']) $(id).hidden = true;
  $('stt-status').textContent = translate ? 'Translating…' : 'Transcribing…';
  const controller = transcribing = new AbortController();
  $('stt-run').disabled = true;
  $('stt-cancel').disabled = false;
  const started = performance.now();
  try {
    const response = await api(translate ? '/v1/audio/translations' : '/v1/audio/transcriptions', { form, signal: controller.signal });
    let done;
    if (translate) {
      // Translations are not streamed: one answer with the segments.
      done = await response.json();
    } else {
      for await (const message of events(response, controller.signal)) {
        if (message.type === 'transcript.text.delta' && message.segment) {
          segments.push(message.segment);
          $('stt-segments').append(segmentItem(message.segment));
          sttProgress(message.segment.end);
          $('stt-status').textContent = `${segments.length} segment${segments.length === 1 ? '' : 's'} · ${shortClock(message.segment.end)} decoded…`;
        } else if (message.type === 'transcript.text.done') {
          done = message;
        }
      }
    }
    if (done) {
      const list = done.segments && done.segments.length ? done.segments
        : [{ start: 0, end: done.duration || audio.seconds || 0, text: done.text || '' }];
      showSegments(list);
      sttProgress(audio.seconds || 0);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      $('stt-status').textContent = `Done in ${seconds} s${done.language ? ` · language ${done.language}` : ''}`
        + `${done.duration ? ` · ${done.duration.toFixed(1)} s of audio` : ''}.`;
      const base = audio.name.replace(/\.[^.]*$/, '');
      setDownload($('stt-srt'), new Blob([srt(list)], { type: 'application/x-subrip' }), `${base}.srt`);
      setDownload($('stt-vtt'), new Blob([vtt(list)], { type: 'text/vtt' }), `${base}.vtt`);
      setDownload($('stt-txt'), new Blob([(done.text || list.map((s) => s.text).join(' ')).trim() + '\n'], { type: 'text/plain' }), `${base}.txt`);
    }
  } catch (error) {
    $('stt-status').textContent = error.name === 'AbortError' ? 'Cancelled.' : 'Failed.';
    if (error.name !== 'AbortError') showError($('stt-error'), error);
  } finally {
    transcribing = null;
    $('stt-run').disabled = false;
    $('stt-cancel').disabled = true;
  }
});

export const stt = {
  setModels(models) {
    const whisper = models.filter((m) => m.kind === 'whisper');
    fillSelect($('stt-model'), [['', 'default'], ...whisper.map((m) => [m.id, m.id])]);
  },
  stop() { transcribing?.abort(); recorder?.stop(); },
};

// ===================================== text to speech =====================================

let context = null;      // one AudioContext, made on the first click (browsers allow sound after a gesture)
let speaking = null;     // AbortController
let sources = [];

async function loadVoices(models) {
  let voices;
  try {
    voices = (await runSteps([{ id: 'voices', method: 'speech.ListVoices', inputs: {} }])).voices.voices || [];
  } catch (error) {
    // Without ListVoices, the models list still names the voices.
    voices = models.filter((m) => ['piper', 'vits', 'mms-tts'].includes(m.kind)).map((m) => ({ name: m.id, model_kind: m.kind }));
    if (!voices.length) showError($('tts-error'), error);
  }
  fillSelect($('tts-voice'), voices.map((v) => {
    const about = [v.language, v.model_kind, v.speakers > 1 && `${v.speakers} speakers`].filter(Boolean).join(', ');
    return [v.name, about ? `${v.name} (${about})` : v.name];
  }));
}

$('tts-speed').addEventListener('input', (e) => { $('tts-speed-value').textContent = `${Number(e.target.value).toFixed(2)}×`; });

function stopSpeaking() {
  speaking?.abort();
  for (const source of sources) { try { source.stop(); } catch { /* not started yet */ } }
  sources = [];
}
$('tts-stop').addEventListener('click', stopSpeaking);

$('tts-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (speaking) return;
  const text = $('tts-text').value.trim();
  if (!text) return showError($('tts-error'), new Error('Type something to say.'));
  // Made and resumed inside the click: browsers only start audio after a user gesture.
  context = context || new AudioContext();
  context.resume();
  stopSpeaking();
  showError($('tts-error'), null);
  const status = $('tts-status');
  const list = $('tts-sentences');
  list.replaceChildren();
  $('tts-audio').hidden = true;
  $('tts-download').hidden = true;
  delete status.dataset.firstPlayChunks;
  status.dataset.chunks = '0';
  status.dataset.state = 'synthesizing';
  status.textContent = 'Synthesizing the first sentence…';
  const controller = speaking = new AbortController();
  $('tts-run').disabled = true;
  $('tts-stop').disabled = false;
  const started = performance.now();
  const wavs = [];
  let nextTime = 0, chain = Promise.resolve();
  try {
    const response = await api('/v1/audio/speech', { signal: controller.signal, json: {
      input: text, voice: $('tts-voice').value || undefined, speed: Number($('tts-speed').value),
      response_format: 'wav', stream_format: 'sse',
    } });
    for await (const message of events(response, controller.signal)) {
      if (message.type !== 'speech.audio.delta') continue;
      const bytes = bytesOfBase64(message.audio);
      wavs.push(bytes);
      const index = wavs.length;
      status.dataset.chunks = String(index);
      const item = el('li', { class: 'pending', text: message.text || `Sentence ${index}` });
      list.append(item);
      // Decode at once; schedule in order, each right after the previous one ends.
      const decoded = context.decodeAudioData(bytes.slice().buffer);
      chain = chain.then(() => decoded).then((buffer) => {
        if (controller.signal.aborted) return;
        const source = context.createBufferSource();
        source.buffer = buffer;
        source.connect(context.destination);
        const at = Math.max(context.currentTime + 0.05, nextTime);
        source.start(at);
        sources.push(source);
        nextTime = at + buffer.duration;
        if (index === 1) {
          // How many sentences had arrived when playback began: 1 means it did not wait for the rest.
          status.dataset.firstPlayChunks = String(wavs.length);
          status.dataset.firstPlayMs = String(Math.round(performance.now() - started));
          status.textContent = `Playing after ${((performance.now() - started) / 1000).toFixed(2)} s while the rest is synthesized…`;
        }
        setTimeout(() => { item.className = 'playing'; }, Math.max(0, (at - context.currentTime) * 1000));
        source.onended = () => { item.className = 'played'; };
      });
    }
    await chain;
    finishSpeech(wavs, started);
  } catch (error) {
    status.dataset.state = 'error';
    if (error.name === 'AbortError') status.textContent = 'Stopped.';
    else { status.textContent = 'Failed.'; showError($('tts-error'), error); }
  } finally {
    speaking = null;
    $('tts-run').disabled = false;
    $('tts-stop').disabled = true;
  }
});

/** The sentences' WAVs as one file (their 16-bit samples back to back) in the player, downloadable. */
function finishSpeech(wavs, started) {
  const status = $('tts-status');
  const parsed = wavs.map(parseWAV).filter(Boolean);
  if (!parsed.length) { status.textContent = 'No audio came back.'; return; }
  const { rate, channels } = parsed[0];
  const length = parsed.reduce((sum, w) => sum + w.data.length, 0);
  const data = new Uint8Array(length);
  let at = 0;
  for (const w of parsed) { data.set(w.data, at); at += w.data.length; }
  const blob = wavOfPCM16(data, rate, channels);
  const player = $('tts-audio');
  if (player.src.startsWith('blob:')) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
  setDownload($('tts-download'), blob, 'speech.wav');
  const seconds = length / (rate * channels * 2);
  status.dataset.state = 'done';
  status.textContent = `${wavs.length} sentence${wavs.length === 1 ? '' : 's'}, ${seconds.toFixed(1)} s of audio, `
    + `synthesized in ${((performance.now() - started) / 1000).toFixed(2)} s; first sound after ${(Number(status.dataset.firstPlayMs) / 1000).toFixed(2)} s.`;
}

export const tts = {
  setModels(models) { loadVoices(models); },
  stop: stopSpeaking,
};
