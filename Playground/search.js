// Search: a CLIP index ("playground") on the vision service, filled with images and searched by text or image.
import { $, base64Of, el, fillSelect, imageDataURL, runSteps, showError } from './lib.js';

const INDEX = 'playground';
// The index keeps ids and vectors only: the thumbnails live here, id → data URL.
const thumbnails = new Map();

export function setModels(models) {
  const clip = models.filter((m) => m.kind === 'clip');
  fillSelect($('search-model'), clip.map((m) => [m.id, m.id]));
  if (!clip.length) $('search-status').textContent = 'No CLIP model is loaded: search needs one.';
}

const busy = (on) => { for (const id of ['search-add', 'search-run', 'search-clear']) $(id).disabled = on; };

/** A short id for the index, unique in this page. */
function idFor(name) {
  const base = name.replace(/\.[^.]*$/, '').replace(/[^\w.-]+/g, '-').slice(0, 40) || 'image';
  let id = base;
  for (let n = 2; thumbnails.has(id); n++) id = `${base}-${n}`;
  return id;
}

function renderGallery() {
  $('search-gallery').replaceChildren(...[...thumbnails].map(([id, url]) =>
    el('figure', { class: 'thumb-card' }, el('img', { src: url, alt: id }), el('figcaption', { text: id }))));
}

$('search-add').addEventListener('click', async () => {
  const files = [...$('search-files').files];
  if (!files.length) return showError($('search-error'), new Error('Choose one or more images to add.'));
  showError($('search-error'), null);
  busy(true);
  $('search-status').textContent = `Embedding ${files.length} image${files.length === 1 ? '' : 's'}…`;
  try {
    // CLIP sees 224 px: 512 px keeps the request small and the thumbnails sharp.
    const urls = await Promise.all(files.map((file) => imageDataURL(file, 512)));
    const ids = [];
    for (const file of files) { const id = idFor(file.name); ids.push(id); thumbnails.set(id, ''); }
    try {
      const { add } = await runSteps([{ id: 'add', method: 'vision.IndexAdd', inputs: {
        index: INDEX, model: $('search-model').value, ids, images: urls.map((url) => ({ data: base64Of(url) })),
      } }]);
      ids.forEach((id, i) => thumbnails.set(id, urls[i]));
      $('search-status').textContent = `Added ${add.added}; the index holds ${add.size}.`;
    } catch (error) {
      ids.forEach((id) => thumbnails.delete(id));
      throw error;
    }
    $('search-files').value = '';
    renderGallery();
  } catch (error) {
    $('search-status').textContent = '';
    showError($('search-error'), error);
  } finally {
    busy(false);
  }
});

$('search-clear').addEventListener('click', async () => {
  busy(true);
  showError($('search-error'), null);
  try {
    let deleted = 0;
    try {
      deleted = (await runSteps([{ id: 'clear', method: 'vision.IndexDelete', inputs: { index: INDEX } }])).clear.deleted || 0;
    } catch (error) {
      if (error.status !== 404) throw error;  // no such index yet: it is as empty as it gets
    }
    thumbnails.clear();
    renderGallery();
    $('search-results').replaceChildren();
    $('search-status').textContent = `The index is empty now (${deleted} removed).`;
  } catch (error) {
    showError($('search-error'), error);
  } finally {
    busy(false);
  }
});

$('search-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('search-text').value.trim();
  const file = $('search-query-image').files[0];
  if (!text && !file) return showError($('search-error'), new Error('Type a text or choose an image to search with.'));
  showError($('search-error'), null);
  busy(true);
  $('search-status').textContent = 'Searching…';
  try {
    // A step's string value is read as JSON when it parses ("42" would be a number): send the text as a JSON string.
    const query = file ? { image: { data: base64Of(await imageDataURL(file, 512)) } } : { text: JSON.stringify(text) };
    const { search } = await runSteps([{ id: 'search', method: 'vision.IndexSearch', inputs: {
      index: INDEX, model: $('search-model').value, top_k: Number($('search-topk').value) || 8, ...query,
    } }]);
    const hits = search.hits || [];
    $('search-results').replaceChildren(...hits.map((hit) => el('figure', { class: 'hit', 'data-id': hit.id },
      thumbnails.get(hit.id) ? el('img', { src: thumbnails.get(hit.id), alt: hit.id })
        : el('div', { class: 'missing', text: 'added elsewhere' }),
      el('figcaption', {}, el('span', { class: 'id', text: hit.id }),
        el('span', { class: 'score', text: (hit.score ?? 0).toFixed(3) }),
        el('meter', { min: -1, max: 1, value: hit.score ?? 0, 'aria-label': `score of ${hit.id}` })))));
    $('search-status').textContent = hits.length
      ? `${hits.length} hit${hits.length === 1 ? '' : 's'} for ${file ? 'the image' : `“${text}”`} (cosine similarity).`
      : 'The index is empty: add images first.';
    $('search-query-image').value = '';
  } catch (error) {
    $('search-status').textContent = '';
    if (error.status === 404 && /no index/.test(error.message)) {
      $('search-results').replaceChildren();
      $('search-status').textContent = 'The index is empty: add images first.';
    } else {
      showError($('search-error'), error);
    }
  } finally {
    busy(false);
  }
});
