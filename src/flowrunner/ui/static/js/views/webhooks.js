// Outbound webhook endpoints (add, enable/disable, send a test event, delete) and, per
// endpoint, its deliveries with every attempt and a redeliver button.

import { api, query } from '../api.js';
import { alertBox, clear, h, pretty, put, short, statusBadge, when } from '../dom.js';

const EVENTS = [
  'execution.started', 'execution.completed', 'execution.failed', 'execution.canceled',
  'node.completed', 'node.failed', 'flow.created', 'flow.updated', 'flow.deleted',
];

export async function renderWebhooks(main) {
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
    const page = await api('GET', `/webhooks${query({ limit: 200 })}`);
    list.replaceChildren(page.items.length
      ? h('table', { class: 'list', id: 'webhooks' },
          h('thead', {}, h('tr', {}, ['URL', 'Events', 'From', 'State', 'Created', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.items.map((endpoint) => h('tr', {},
            h('td', {}, h('a', { href: `#/webhooks/${encodeURIComponent(endpoint.id)}` }, endpoint.url)),
            h('td', {}, endpoint.events.length ? endpoint.events.join(', ') : 'every event'),
            h('td', {}, endpoint.source),
            h('td', {}, statusBadge(endpoint.enabled ? 'enabled' : 'disabled')),
            h('td', {}, when(endpoint.created_at)),
            h('td', { class: 'actions' },
              h('button', {
                type: 'button', class: 'secondary', 'aria-label': `Send a test event to ${endpoint.url}`,
                onclick: () => act(async () => {
                  await api('POST', `/webhooks/${encodeURIComponent(endpoint.id)}/test`);
                  notes.replaceChildren(alertBox(`A test event is on its way to ${endpoint.url}.`, 'ok'));
                }),
              }, 'Test'),
              endpoint.source === 'api' ? [
                h('button', {
                  type: 'button', class: 'secondary', 'aria-label': `${endpoint.enabled ? 'Disable' : 'Enable'} ${endpoint.url}`,
                  onclick: () => act(() => api('PATCH', `/webhooks/${encodeURIComponent(endpoint.id)}`, { body: { enabled: !endpoint.enabled } })),
                }, endpoint.enabled ? 'Disable' : 'Enable'),
                h('button', {
                  type: 'button', class: 'danger', 'aria-label': `Delete ${endpoint.url}`,
                  onclick: () => {
                    if (!confirm(`Delete the endpoint ${endpoint.url}? Its pending deliveries are dropped.`)) return;
                    act(() => api('DELETE', `/webhooks/${encodeURIComponent(endpoint.id)}`));
                  },
                }, 'Delete'),
              ] : null)))))
      : h('p', { class: 'muted' }, 'No webhook endpoints yet.'));
  }

  const url = h('input', { id: 'webhook-url', type: 'url', required: true, maxlength: 2048, placeholder: 'https://example.com/hooks/flowrunner' });
  const description = h('input', { id: 'webhook-description', maxlength: 500 });
  const boxes = EVENTS.map((event) => h('input', { type: 'checkbox', value: event, id: `event-${event}` }));
  const form = h('form', { class: 'card' },
    h('h2', {}, 'Add an endpoint'),
    h('label', { for: 'webhook-url' }, 'URL'), url,
    h('label', { for: 'webhook-description' }, 'Description'), description,
    h('fieldset', {}, h('legend', {}, 'Events (none checked: every event)'),
      boxes.map((box) => h('label', { class: 'check', for: box.id }, box, ` ${box.value}`))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const body = { url: url.value, description: description.value, events: boxes.filter((b) => b.checked).map((b) => b.value) };
      const created = await api('POST', '/webhooks', { body });
      url.value = '';
      description.value = '';
      for (const box of boxes) box.checked = false;
      notes.replaceChildren(h('div', { class: 'alert ok', role: 'status' },
        h('p', {}, `Endpoint added. Its signing secret is shown once: verify deliveries with it.`),
        h('input', { readonly: true, value: created.secret || '', class: 'code', 'aria-label': 'The signing secret', onfocus: (e) => e.target.select() })));
      await load();
    } catch (error) {
      notes.replaceChildren(alertBox(error.message));
    }
  });
  main.append(h('h1', {}, 'Webhooks'), notes, list, form);
  await load();
}

export async function renderWebhook(main, endpointId) {
  const path = `/webhooks/${encodeURIComponent(endpointId)}`;
  const endpoint = await api('GET', path);
  const list = h('div', { 'aria-live': 'polite' });
  const detail = h('div', { class: 'card delivery-detail', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Select a delivery to see its attempts.'));
  const notes = h('div', { 'aria-live': 'assertive' });

  async function show(id) {
    const delivery = await api('GET', `/webhooks/deliveries/${encodeURIComponent(id)}`);
    put(clear(detail),
      h('h2', {}, `Delivery ${short(delivery.id)} · ${delivery.event_type}`),
      h('p', {}, statusBadge(delivery.status), ` ${delivery.attempts} attempt(s)`),
      h('table', { class: 'list', id: 'attempts' },
        h('thead', {}, h('tr', {}, ['#', 'At', 'Status', 'Latency', 'Answer or error', 'Next try'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, delivery.attempt_history.map((a) => h('tr', {},
          h('td', { class: 'num' }, String(a.number)),
          h('td', {}, when(a.at)),
          h('td', {}, a.status_code === null ? '—' : String(a.status_code)),
          h('td', {}, `${Math.round(a.latency_ms)} ms`),
          h('td', { class: 'answer' }, h('code', {}, a.error || a.response || '')),
          h('td', {}, a.next_attempt_at ? when(a.next_attempt_at) : '—'))))),
      delivery.payload ? [h('h3', {}, 'Payload'), h('pre', { class: 'json', tabindex: 0 }, pretty(delivery.payload))] : null,
      h('div', { class: 'actions' }, h('button', {
        type: 'button', class: 'secondary',
        onclick: async () => {
          try {
            await api('POST', `/webhooks/deliveries/${encodeURIComponent(delivery.id)}/redeliver`);
            notes.replaceChildren(alertBox('Queued for delivery again.', 'ok'));
            await load();
          } catch (error) {
            notes.replaceChildren(alertBox(error.message));
          }
        },
      }, 'Redeliver')));
  }

  async function load() {
    const page = await api('GET', `${path}/deliveries${query({ limit: 100 })}`);
    list.replaceChildren(page.items.length
      ? h('table', { class: 'list', id: 'deliveries' },
          h('thead', {}, h('tr', {}, ['Delivery', 'Event', 'Status', 'Attempts', 'Last answer', 'Created'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.items.map((d) => h('tr', {},
            h('td', {}, h('button', { type: 'button', class: 'link', 'aria-label': `Delivery ${short(d.id)}`, onclick: () => show(d.id).catch((e) => notes.replaceChildren(alertBox(e.message))) }, short(d.id))),
            h('td', {}, d.event_type),
            h('td', {}, statusBadge(d.status)),
            h('td', { class: 'num' }, String(d.attempts)),
            h('td', {}, d.last_status_code !== null ? String(d.last_status_code) : d.last_error || '—'),
            h('td', {}, when(d.created_at))))))
      : h('p', { class: 'muted' }, 'No deliveries yet.'));
  }

  main.append(
    h('h1', {}, `Webhook ${endpoint.url}`),
    h('p', { class: 'muted' }, `${endpoint.events.length ? endpoint.events.join(', ') : 'every event'} · ${endpoint.enabled ? 'enabled' : 'disabled'} · from ${endpoint.source}`),
    notes, h('h2', {}, 'Deliveries'), list, detail);
  await load();
}
