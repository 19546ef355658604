// The page: tabs, the API key prompt, and the model list every tab picks from.
import { $, api, apiKey, describe, hooks, showError } from './lib.js';
import * as chat from './chat.js';
import * as images from './images.js';
import * as speech from './speech.js';
import * as search from './search.js';
import * as pipelines from './pipelines.js';
import * as status from './status.js';

// Tab name (its data-name, also the URL's #fragment) → the module behind its panel.
const modules = {
  chat, images, 'speech-to-text': speech.stt, 'text-to-speech': speech.tts, search, pipelines, status,
};
const tabs = [...document.querySelectorAll('[role=tab]')];

function select(tab, focus = false) {
  for (const other of tabs) {
    const on = other === tab;
    other.setAttribute('aria-selected', String(on));
    other.tabIndex = on ? 0 : -1;  // roving tabindex: Tab enters the list once, arrows move inside
    $(other.getAttribute('aria-controls')).hidden = !on;
    modules[other.dataset.name].shown?.(on);
  }
  if (focus) tab.focus();
  history.replaceState(null, '', `#${tab.dataset.name}`);
}

$('tabs').addEventListener('click', (event) => {
  const tab = event.target.closest('[role=tab]');
  if (tab) select(tab);
});

$('tabs').addEventListener('keydown', (event) => {
  const at = tabs.indexOf(document.activeElement);
  if (at < 0) return;
  const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  select(tabs[(next + tabs.length) % tabs.length], true);
});

// ---- API key ----------------------------------------------------------------------------------------

function showKeyPanel(error) {
  $('app').hidden = true;
  $('key-panel').hidden = false;
  $('conn').textContent = 'Needs an API key';
  // A key that was sent and refused: say why in the API's words, and drop it.
  if (apiKey.get()) {
    showError($('key-error'), new Error(`The gateway refused this key: ${describe(error)}`));
    apiKey.set('');
  } else {
    showError($('key-error'), null);
  }
  $('key-input').focus();
}

hooks.unauthorized = (error) => {
  for (const module of Object.values(modules)) module.stop?.();
  showKeyPanel(error);
};

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  apiKey.set($('key-input').value.trim());
  $('key-submit').disabled = true;
  boot().finally(() => { $('key-submit').disabled = false; });
});

$('key-forget').addEventListener('click', () => {
  apiKey.set('');
  $('key-input').value = '';
  showError($('key-error'), null);
});

$('key-change').addEventListener('click', () => {
  for (const module of Object.values(modules)) module.stop?.();
  $('key-input').value = '';
  apiKey.set('');
  boot();
});

// ---- start --------------------------------------------------------------------------------------------

async function boot() {
  $('conn').textContent = 'Connecting…';
  let models;
  try {
    models = (await (await api('/v1/models')).json()).data || [];
  } catch (error) {
    if (error.status !== 401) {
      $('conn').textContent = `Gateway error: ${describe(error)}`;
      $('conn').classList.add('bad');
    }
    return;  // a 401 has shown the key prompt
  }
  $('conn').classList.remove('bad');
  $('conn').textContent = `${models.length} model${models.length === 1 ? '' : 's'}`;
  $('key-panel').hidden = true;
  $('key-input').value = '';
  $('key-change').hidden = !apiKey.get();
  $('app').hidden = false;
  for (const module of Object.values(modules)) module.setModels?.(models);
  const wanted = tabs.find((tab) => `#${tab.dataset.name}` === location.hash) || tabs[0];
  select(wanted);
}

boot();
