// Inbound triggers (webhook hooks and schedules) of the account's flows: what starts a flow
// besides an API call, with enable/disable and delete.

import { api, query } from '../api.js';
import { alertBox, h, statusBadge, when } from '../dom.js';

function describe(trigger) {
  if (trigger.kind === 'schedule') {
    const c = trigger.config || {};
    return [c.cron ? `cron ${c.cron}` : c.interval != null ? `every ${c.interval}` : JSON.stringify(c), c.timezone ? ` (${c.timezone})` : ''].join('');
  }
  return trigger.url ? h('code', {}, trigger.url) : 'webhook';
}

export async function renderTriggers(main) {
  const list = h('div', { 'aria-live': 'polite' });
  const notes = h('div', { 'aria-live': 'assertive' });

  async function act(work) {
    try {
      await work();
      await load();
    } catch (error) {
      notes.replaceChildren(alertBox(error.message));
    }
  }

  async function load() {
    const page = await api('GET', `/triggers${query({ limit: 200 })}`);
    list.replaceChildren(page.items.length
      ? h('table', { class: 'list', id: 'triggers' },
          h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Flow', 'When / where', 'From', 'State', 'Created', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.items.map((t) => h('tr', {},
            h('td', {}, t.name),
            h('td', {}, t.kind),
            h('td', {}, h('a', { href: `#/flows/${encodeURIComponent(t.flow_id)}` }, 'open flow')),
            h('td', {}, describe(t)),
            h('td', {}, t.source),
            h('td', {}, statusBadge(t.enabled ? 'enabled' : 'disabled')),
            h('td', {}, when(t.created_at)),
            h('td', { class: 'actions' },
              h('button', {
                type: 'button', class: 'secondary', 'aria-label': `${t.enabled ? 'Disable' : 'Enable'} trigger ${t.name}`,
                onclick: () => act(() => api('POST', `/triggers/${encodeURIComponent(t.id)}/${t.enabled ? 'disable' : 'enable'}`)),
              }, t.enabled ? 'Disable' : 'Enable'),
              t.source === 'api' ? h('button', {
                type: 'button', class: 'danger', 'aria-label': `Delete trigger ${t.name}`,
                onclick: () => {
                  if (!confirm(`Delete the trigger ${t.name}?`)) return;
                  act(() => api('DELETE', `/triggers/${encodeURIComponent(t.id)}`));
                },
              }, 'Delete') : null)))))
      : h('p', { class: 'muted' }, 'No triggers yet: declare them under triggers: in a flow, or create them over the API.'));
  }

  main.append(h('h1', {}, 'Triggers'), notes, list);
  await load();
}
