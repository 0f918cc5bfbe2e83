import { api, query } from '../api.js';
import { alertBox, h, ms, short, statusBadge, when } from '../dom.js';
import { pager } from './flows.js';

const STATUSES = ['queued', 'running', 'waiting', 'completed', 'failed', 'canceled'];
const PAGE = 20;

export async function renderExecutions(main) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const status = h('select', { id: 'status-filter', name: 'status' },
    h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, selected: params.get('status') === s }, s)));
  const flowId = h('input', { id: 'flow-filter', name: 'flow_id', value: params.get('flow_id') || '', placeholder: 'flow id' });
  // Times in the browser's own zone (a datetime-local input), sent as UTC.
  const after = h('input', { id: 'after-filter', type: 'datetime-local', name: 'created_after', value: localTime(params.get('created_after')) });
  const before = h('input', { id: 'before-filter', type: 'datetime-local', name: 'created_before', value: localTime(params.get('created_before')) });
  const results = h('div', { 'aria-live': 'polite' });
  const names = new Map();
  const cursors = [null];

  async function flowName(id) {
    if (!names.has(id)) names.set(id, api('GET', `/flows/${encodeURIComponent(id)}`).then((f) => f.name, () => short(id)));
    return names.get(id);
  }

  let generation = 0; // a newer load wins over a slower, older one

  async function load(cursor) {
    const mine = ++generation;
    results.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    let page;
    const asked = query({
      status: status.value, flow_id: flowId.value.trim(),
      created_after: utc(after), created_before: utc(before), limit: PAGE, cursor,
    });
    try {
      page = await api('GET', `/executions${asked}`);
      if (mine !== generation) return;
    } catch (error) {
      if (mine === generation) results.replaceChildren(alertBox(error.message));
      return;
    }
    const rows = await Promise.all(page.items.map(async (run) =>
      h('tr', {},
        h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.id)}` }, short(run.id))),
        h('td', {}, h('a', { href: `#/flows/${encodeURIComponent(run.flow_id)}` }, await flowName(run.flow_id)), ` v${run.flow_version}`),
        h('td', {}, statusBadge(run.status)),
        h('td', {}, when(run.created_at)),
        h('td', { class: 'num' }, ms(run.duration_ms)))));
    if (mine !== generation) return; // a newer load started while the flow names came in
    results.replaceChildren(
      rows.length
        ? h('table', { class: 'list', id: 'executions' },
            h('thead', {}, h('tr', {}, ['Run', 'Flow', 'Status', 'Created', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, rows))
        : h('p', { class: 'muted' }, 'No run matches.'),
      pager(cursors, page.next_cursor, load));
    results.dataset.query = asked; // what the list shows (tests wait on it)
  }

  const form = h('form', { class: 'filters', role: 'search' },
    // Each label stays beside its input when the row wraps.
    h('span', { class: 'field' }, h('label', { for: 'status-filter' }, 'Status'), status),
    h('span', { class: 'field' }, h('label', { for: 'flow-filter' }, 'Flow'), flowId),
    h('span', { class: 'field' }, h('label', { for: 'after-filter' }, 'Created after'), after),
    h('span', { class: 'field' }, h('label', { for: 'before-filter' }, 'Created before'), before),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    cursors.length = 1;
    load(null);
  });
  for (const input of [status, after, before]) {
    input.addEventListener('change', () => { cursors.length = 1; load(null); });
  }
  main.append(h('h1', {}, 'Executions'), form, results);
  await load(null);
}

// A datetime-local input's value as an ISO 8601 UTC time ('' when empty or incomplete).
function utc(input) {
  const at = input.value ? new Date(input.value) : null;
  return at && !Number.isNaN(at.getTime()) ? at.toISOString() : '';
}

// An ISO 8601 time (from a link's query) as a datetime-local value in the browser's zone.
function localTime(iso) {
  const at = iso ? new Date(iso) : null;
  if (!at || Number.isNaN(at.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}
