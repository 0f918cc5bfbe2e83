import { api, query } from '../api.js';
import { alertBox, h, when } from '../dom.js';

const BASE = '/accounts/me/secrets';

export async function renderSecrets(main) {
  const list = h('div', { 'aria-live': 'polite' });
  const notes = h('div', { 'aria-live': 'assertive' });

  async function load() {
    const page = await api('GET', `${BASE}${query({ limit: 200 })}`);
    list.replaceChildren(page.items.length
      ? h('table', { class: 'list', id: 'secrets' },
          h('thead', {}, h('tr', {}, ['Name', 'Created', 'Updated', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.items.map((secret) => h('tr', {},
            h('td', {}, h('code', {}, secret.key)),
            h('td', {}, when(secret.created_at)),
            h('td', {}, when(secret.updated_at)),
            h('td', {}, h('button', {
              type: 'button', class: 'danger', 'aria-label': `Delete secret ${secret.key}`,
              onclick: async () => {
                if (!confirm(`Delete the secret ${secret.key}? Flows that use it will fail.`)) return;
                try {
                  await api('DELETE', `${BASE}/${encodeURIComponent(secret.key)}`);
                  notes.replaceChildren(alertBox(`Deleted ${secret.key}.`, 'ok'));
                  await load();
                } catch (error) {
                  notes.replaceChildren(alertBox(error.message));
                }
              },
            }, 'Delete'))))))
      : h('p', { class: 'muted' }, 'No secrets yet.'));
    if (page.next_cursor) list.append(h('p', { class: 'muted' }, 'Only the first 200 are shown.'));
  }

  const key = h('input', { id: 'secret-key', required: true, maxlength: 128, autocomplete: 'off', pattern: '[A-Za-z_][A-Za-z0-9_]*' });
  const value = h('input', { id: 'secret-value', type: 'password', required: true, autocomplete: 'new-password' });
  const form = h('form', { class: 'card' },
    h('h2', {}, 'Set a secret'),
    h('p', { class: 'muted' }, 'Values are encrypted at rest and never shown again after saving; flows read them as ${secrets.NAME}.'),
    h('label', { for: 'secret-key' }, 'Name'), key,
    h('label', { for: 'secret-value' }, 'Value'), value,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const saved = await api('PUT', `${BASE}/${encodeURIComponent(key.value)}`, { body: { value: value.value } });
      value.value = '';
      notes.replaceChildren(alertBox(`Saved ${saved.key}.${saved.warnings.length ? ` ${saved.warnings.join(' ')}` : ''}`, 'ok'));
      await load();
    } catch (error) {
      notes.replaceChildren(alertBox(error.message));
    }
  });
  main.append(h('h1', {}, 'Secrets'), notes, list, form);
  await load();
}
