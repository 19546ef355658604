// Status: services, replicas, health, queue, in flight and memory, refreshed every 2 s while shown.
import { $, api, el, formatBytes, formatSeconds, runSteps, showError } from './lib.js';

const SERVICES = ['vision', 'diffusion', 'speech'];
let timer = null;
let refreshing = false;

export function shown(on) {
  clearInterval(timer);
  timer = null;
  if (!on) return;
  refresh();
  timer = setInterval(() => { if (!document.hidden) refresh(); }, 2000);
}

export function stop() { shown(false); }

/** Prometheus text → [{name, labels, value}] for the lines named in `wanted`. */
function metrics(text, wanted) {
  const rows = [];
  for (const line of text.split('\n')) {
    const match = /^(\w+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || !wanted.includes(match[1])) continue;
    const labels = Object.fromEntries([...(match[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    rows.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return rows;
}

/** /readyz's JSON: it needs no key, and a 503 (not ready) has the same shape as a 200. */
async function readiness() {
  const response = await fetch('/readyz');
  try {
    return await response.json();
  } catch {
    throw new Error(`/readyz answered ${response.status} without JSON.`);
  }
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    // Each service asked on its own: a missing one fails its own step, not the others'.
    const [ready, text, ...statuses] = await Promise.all([
      readiness(),
      api('/metrics').then((r) => r.text()).catch(() => ''),
      ...SERVICES.map((name) => runSteps([{ id: 's', method: `${name}.Status`, inputs: {} }])
        .then((steps) => steps.s).catch((error) => ({ error }))),
    ]);
    render(ready, metrics(text, ['chorus_replica_healthy', 'chorus_replica_in_flight']), statuses);
    showError($('status-error'), null);
    $('status-updated').textContent = `Updated ${new Date().toLocaleTimeString()} · every 2 s`;
  } catch (error) {
    showError($('status-error'), error);
  } finally {
    refreshing = false;
  }
}

const STATES = { 0: 'unknown', 1: 'serving', 2: 'not serving', 3: 'draining' };
const stateName = (state) => (typeof state === 'number' ? STATES[state] || String(state)
  : String(state || 'unknown').toLowerCase().replace(/^serving_state_/, '').replace(/_/g, ' '));

function fact(label, value, className) {
  return [el('dt', { text: label }), el('dd', { class: className, text: value })];
}

function render(ready, rows, statuses) {
  const summary = $('status-summary');
  const ok = ready.status === 'ready';
  summary.textContent = ok ? 'Ready' : `Not ready${ready.error ? `: ${ready.error}` : ''}`;
  summary.className = `badge ${ok ? 'good' : 'bad'}`;
  summary.dataset.status = ready.status;

  const names = [...new Set([...SERVICES, ...Object.keys(ready.services || {})])];
  $('status-services').replaceChildren(...names.map((name, i) => {
    const health = (ready.services || {})[name];
    const status = statuses[i] && !statuses[i].error ? statuses[i] : null;
    const replicas = rows.filter((row) => row.labels.service === name && row.name === 'chorus_replica_healthy');
    const up = health && health.healthy_replicas > 0 && status;
    return el('article', { class: `service ${up ? 'up' : 'down'}`, 'data-service': name },
      el('h3', {}, name, el('span', { class: `badge ${up ? 'good' : 'bad'}`, text: up ? stateName(status.state) : 'down' })),
      el('dl', {},
        fact('Replicas healthy', health ? `${health.healthy_replicas} / ${health.replicas}` : 'not configured', 'replicas'),
        status ? [
          // in_flight counts every call open on the service, this Status call among them: leave it out.
          fact('In flight', `${Math.max(0, (status.in_flight ?? 1) - 1)} (${status.max_concurrency ?? '?'} compute slots)`, 'in-flight'),
          fact('Queue depth', `${status.queue_depth ?? 0} of ${status.max_queue ?? '?'}`, 'queue'),
          fact('Memory', `${formatBytes(status.resident_bytes)} (peak ${formatBytes(status.peak_resident_bytes)})`, 'memory'),
          fact('Calls', `${status.calls_total ?? 0}${status.calls_failed ? ` (${status.calls_failed} failed)` : ''}`, 'calls'),
          fact('Up for', formatSeconds(status.uptime_seconds), 'uptime'),
        ] : fact('Status', statuses[i]?.error?.message || 'no answer', 'error-text')),
      replicas.length ? el('ul', { class: 'replica-list' }, replicas.map((row) => {
        const inFlight = rows.find((r) => r.name === 'chorus_replica_in_flight' && r.labels.address === row.labels.address && r.labels.service === name);
        return el('li', { class: row.value ? 'good' : 'bad' },
          el('span', { class: 'dot', 'aria-hidden': 'true' }), `${row.labels.address} — ${row.value ? 'healthy' : 'unhealthy'}`,
          inFlight ? `, ${inFlight.value} in flight` : '');
      })) : null,
      status && status.models && status.models.length
        ? el('p', { class: 'models', text: `Models: ${status.models.map((m) => m.name || m.id || m.model || JSON.stringify(m)).join(', ')}` }) : null);
  }));

  const upstreams = Object.entries(ready.upstreams || {});
  $('status-upstreams').replaceChildren(...upstreams.map(([name, u]) => el('article', { class: `service ${u.healthy ? 'up' : 'down'}`, 'data-upstream': name },
    el('h3', {}, `${name} (upstream)`, el('span', { class: `badge ${u.healthy ? 'good' : 'bad'}`, text: u.healthy ? 'healthy' : 'circuit open' })),
    el('dl', {}, fact('In flight', String(u.in_flight ?? 0))))));
}
