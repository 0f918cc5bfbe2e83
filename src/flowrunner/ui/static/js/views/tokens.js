import { api, query } from '../api.js';
import { alertBox, h, when } from '../dom.js';

export async function renderTokens(main) {
  const list = h('div', { 'aria-live': 'polite' });
  const notes = h('div', { 'aria-live': 'assertive' });

  async function load() {
    const page = await api('GET', `/tokens${query({ limit: 200 })}`);
    list.replaceChildren(page.items.length
      ? h('table', { class: 'list', id: 'tokens' },
          h('thead', {}, h('tr', {}, ['Name', 'Starts with', 'Created', 'Last used', 'Expires', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.items.map((token) => h('tr', { class: token.revoked_at ? 'revoked' : '' },
            h('td', {}, token.name),
            h('td', {}, h('code', {}, `${token.prefix}…`)),
            h('td', {}, when(token.created_at)),
            h('td', {}, when(token.last_used_at)),
            h('td', {}, token.expires_at ? when(token.expires_at) : 'never'),
            h('td', {}, token.revoked_at ? `revoked ${when(token.revoked_at)}` : h('button', {
              type: 'button', class: 'danger', 'aria-label': `Revoke token ${token.name}`,
              onclick: async () => {
                if (!confirm(`Revoke the token ${token.name}? Whatever uses it stops working.`)) return;
                try {
                  await api('DELETE', `/tokens/${encodeURIComponent(token.id)}`);
                  await load();
                } catch (error) {
                  notes.replaceChildren(alertBox(error.message));
                }
              },
            }, 'Revoke'))))))
      : h('p', { class: 'muted' }, 'No tokens yet.'));
  }

  const name = h('input', { id: 'token-name', required: true, maxlength: 100 });
  const days = h('input', { id: 'token-days', type: 'number', min: 1, max: 3650, inputmode: 'numeric' });
  const form = h('form', { class: 'card' },
    h('h2', {}, 'Create a token'),
    h('label', { for: 'token-name' }, 'Name'), name,
    h('label', { for: 'token-days' }, 'Expires after (days; empty: never)'), days,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const body = { name: name.value };
      if (days.value) body.expires_in_seconds = Number(days.value) * 86400;
      const created = await api('POST', '/tokens', { body });
      name.value = '';
      notes.replaceChildren(h('div', { class: 'alert ok', role: 'status' },
        h('p', {}, `Token ${created.name} created. Copy it now: it is not shown again.`),
        h('input', { readonly: true, value: created.token, class: 'code', 'aria-label': 'The new token', onfocus: (e) => e.target.select() })));
      await load();
    } catch (error) {
      notes.replaceChildren(alertBox(error.message));
    }
  });
  main.append(h('h1', {}, 'API tokens'), notes, list, form);
  await load();
}
