import { api, query } from '../api.js';
import { alertBox, h, put, when } from '../dom.js';
import { yamlEditor } from './yaml.js';

const PAGE = 25;

export async function renderFlows(main) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const search = h('input', { id: 'flow-search', type: 'search', name: 'name', value: params.get('name') || '', placeholder: 'name contains…' });
  const tag = h('input', { id: 'flow-tag', name: 'tag', value: params.get('tag') || '', placeholder: 'tag' });
  const results = h('div', { 'aria-live': 'polite' });
  const cursors = [null];

  let generation = 0; // a newer load wins over a slower, older one

  async function load(cursor) {
    const mine = ++generation;
    results.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    let page;
    try {
      page = await api('GET', `/flows${query({ name: search.value.trim(), tag: tag.value.trim(), limit: PAGE, cursor })}`);
      if (mine !== generation) return;
    } catch (error) {
      if (mine === generation) results.replaceChildren(alertBox(error.message));
      return;
    }
    const rows = page.items.map((flow) =>
      h('tr', {},
        h('td', {}, h('a', { href: `#/flows/${encodeURIComponent(flow.id)}` }, flow.name)),
        h('td', { class: 'wide' }, flow.description || ''),
        h('td', {}, flow.tags.map((t) => h('span', { class: 'tag' }, t))),
        h('td', { class: 'num' }, `v${flow.version}`),
        h('td', {}, when(flow.updated_at))));
    const nav = pager(cursors, page.next_cursor, load);
    results.replaceChildren(
      rows.length
        ? h('table', { class: 'list' },
            h('caption', { class: 'sr-only' }, 'Flows'),
            h('thead', {}, h('tr', {}, ['Name', 'Description', 'Tags', 'Version', 'Updated'].map((c) => h('th', { scope: 'col', class: c === 'Description' ? 'wide' : null }, c)))),
            h('tbody', {}, rows))
        : h('p', { class: 'muted' }, 'No flow matches.'),
      nav);
  }

  const form = h('form', { class: 'filters', role: 'search', onsubmit: (e) => { e.preventDefault(); cursors.length = 1; load(null); } },
    h('label', { for: 'flow-search' }, 'Search by name'), search,
    h('label', { for: 'flow-tag' }, 'Tag'), tag,
    h('button', { type: 'submit' }, 'Search'));
  put(main, 
    h('div', { class: 'title-row' }, h('h1', {}, 'Flows'), h('a', { class: 'button', href: '#/flows/new' }, 'New flow')),
    form, results);
  await load(null);
}

// Previous / Next over cursor pages; `cursors` holds the cursor of each page seen so far.
export function pager(cursors, next, load) {
  const at = cursors.length - 1;
  const prev = h('button', { type: 'button', disabled: at === 0 }, '← Previous');
  const more = h('button', { type: 'button', disabled: !next }, 'Next →');
  prev.addEventListener('click', () => { cursors.pop(); load(cursors[cursors.length - 1]); });
  more.addEventListener('click', () => { cursors.push(next); load(next); });
  return h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, h('span', {}, `page ${cursors.length}`), more);
}

const EXAMPLE = `metadata:
  name: Hello
  description: A first flow
nodes:
  greet:
    type: transform
    params:
      script: |
        return { greeting: "Hello, " + (input.name || "world") };
`;

export function renderNewFlow(main) {
  const status = h('div', { 'aria-live': 'polite' });
  const editor = yamlEditor({ id: 'new-flow-yaml', label: 'Flow YAML', value: EXAMPLE });
  const save = h('button', { type: 'submit' }, 'Create flow');
  const form = h('form', { class: 'card' }, editor.element,
    h('div', { class: 'actions' }, editor.validateButton, save), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.replaceChildren();
    save.disabled = true;
    try {
      const flow = await api('POST', '/flows', { body: editor.value, yaml: true });
      location.hash = `#/flows/${encodeURIComponent(flow.id)}`;
    } catch (error) {
      editor.showProblems(error.details);
      status.append(alertBox(error.message));
    } finally {
      save.disabled = false;
    }
  });
  put(main, h('h1', {}, 'New flow'), form);
}
