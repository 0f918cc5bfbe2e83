import { api, query } from '../api.js';
import { alertBox, h, put, short, statusBadge, when } from '../dom.js';
import { drawGraph } from '../graph.js';
import { problemList, yamlEditor, yamlView } from './yaml.js';

export async function renderFlow(main, flowId) {
  const path = `/flows/${encodeURIComponent(flowId)}`;
  let [flow, graph, versions] = await Promise.all([
    api('GET', path),
    api('GET', `${path}/graph`),
    api('GET', `${path}/versions${query({ limit: 100 })}`),
  ]);

  const details = h('div', { class: 'node-details', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Select a node to see its details.'));
  const graphBox = h('div', { class: 'graph-box' });
  let view;
  const showNode = (id) => {
    const node = graph.nodes.find((n) => n.id === id);
    view.select(id);
    details.replaceChildren(
      h('h3', {}, node.id),
      h('dl', {},
        h('dt', {}, 'Type'), h('dd', {}, node.type),
        node.description ? [h('dt', {}, 'Description'), h('dd', {}, node.description)] : null,
        h('dt', {}, 'Retries'), h('dd', {}, String(node.retries)),
        h('dt', {}, 'Batch'), h('dd', {}, node.batch || '—'),
        h('dt', {}, 'Timeout'), h('dd', {}, node.timeout || '—'),
        h('dt', {}, 'Next'), h('dd', {}, graph.edges.filter((e) => e.source === id).map((e) => `${e.action} → ${e.target}`).join(', ') || '— (ends the run)'),
        node.line ? [h('dt', {}, 'YAML'), h('dd', {}, `line ${node.line}`)] : null));
  };
  view = drawGraph(graphBox, graph, { onSelect: showNode });

  put(main, 
    h('div', { class: 'title-row' },
      h('h1', {}, flow.name),
      h('a', { class: 'button secondary', href: `#/executions?flow_id=${encodeURIComponent(flow.id)}` }, 'Runs of this flow')),
    h('p', { class: 'muted' },
      `version ${flow.version} · updated ${when(flow.updated_at)} · id `, h('code', {}, flow.id),
      flow.tags.map((t) => h('span', { class: 'tag' }, t))),
    flow.description ? h('p', {}, flow.description) : null,
    h('section', { 'aria-labelledby': 'graph-title' },
      h('h2', { id: 'graph-title' }, 'Graph'),
      h('div', { class: 'split' }, graphBox, details)),
    runForm(flow, versions),
    yamlSection(flow, path),
    versionsSection(flow, versions, path));
}

function runForm(flow, versions) {
  const input = h('textarea', { id: 'run-input', rows: 5, class: 'code', spellcheck: 'false' });
  input.value = '{}';
  const version = h('select', { id: 'run-version' },
    versions.items.map((v) => h('option', { value: v.number, selected: v.number === flow.version }, `v${v.number}${v.number === flow.version ? ' (current)' : ''}`)));
  const status = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit' }, 'Run');
  const form = h('form', { class: 'card run-form', 'aria-labelledby': 'run-title' },
    h('h2', { id: 'run-title' }, 'Run'),
    h('label', { for: 'run-input' }, 'Input (JSON)'), input,
    h('label', { for: 'run-version' }, 'Version'), version,
    h('div', { class: 'actions' }, submit), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.replaceChildren();
    let value;
    try {
      value = JSON.parse(input.value || '{}');
    } catch (error) {
      status.append(alertBox(`The input is not JSON: ${error.message}`));
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const run = await api('POST', `/flows/${encodeURIComponent(flow.id)}/run`, { body: { input: value, version: Number(version.value) } });
      location.hash = `#/runs/${encodeURIComponent(run.execution_id)}`;
    } catch (error) {
      status.append(alertBox(error.message));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function yamlSection(flow, path) {
  const body = h('div', {}, yamlView(flow.content));
  // A stored flow has no errors, but may have warnings: shown on their lines.
  api('POST', '/flows/validate', { body: { content: flow.content } }).then((report) => {
    if (!report.problems.length || !body.querySelector('pre.yaml')) return;
    body.replaceChildren(
      h('p', { class: 'muted' }, `${report.problems.length} warning${report.problems.length > 1 ? 's' : ''}:`),
      problemList(report.problems), yamlView(flow.content, { problems: report.problems }));
  }, () => {}); // the YAML is shown either way

  const edit = h('button', { type: 'button', class: 'secondary' }, 'Edit');
  edit.addEventListener('click', () => {
    const editor = yamlEditor({ id: 'edit-yaml', label: 'Edit the YAML (saving makes a new version)', value: flow.content });
    const status = h('div', { 'aria-live': 'assertive' });
    const save = h('button', { type: 'submit' }, 'Save new version');
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => body.replaceChildren(yamlView(flow.content)) }, 'Cancel');
    const form = h('form', {}, editor.element, h('div', { class: 'actions' }, editor.validateButton, save, cancel), status);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      status.replaceChildren();
      try {
        await api('PUT', path, { body: { content: editor.value }, headers: { 'If-Match': `"${flow.version}"` } });
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      } catch (error) {
        editor.showProblems(error.details);
        status.append(alertBox(error.message));
      }
    });
    body.replaceChildren(form);
    form.querySelector('textarea').focus();
  });
  return h('section', { 'aria-labelledby': 'yaml-title' },
    h('div', { class: 'title-row' }, h('h2', { id: 'yaml-title' }, 'YAML'), edit), body);
}

function versionsSection(flow, versions, path) {
  const from = h('select', { id: 'diff-from' });
  const to = h('select', { id: 'diff-to' });
  for (const v of versions.items) {
    from.append(h('option', { value: v.number, selected: v.number === Math.max(1, flow.version - 1) }, `v${v.number}`));
    to.append(h('option', { value: v.number, selected: v.number === flow.version }, `v${v.number}`));
  }
  const layout = h('select', { id: 'diff-layout' },
    h('option', { value: 'split' }, 'side by side'), h('option', { value: 'unified' }, 'unified'));
  const out = h('div', { 'aria-live': 'polite' });
  const diffForm = h('form', { class: 'filters' },
    h('label', { for: 'diff-from' }, 'Compare'), from, h('label', { for: 'diff-to' }, 'with'), to,
    h('label', { for: 'diff-layout' }, 'as'), layout,
    h('button', { type: 'submit' }, 'Show diff'));
  diffForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const diff = await api('GET', `${path}/diff${query({ from: from.value, to: to.value })}`);
      const label = `v${from.value} and v${to.value}`;
      out.replaceChildren(layout.value === 'split' ? splitDiffView(diff.diff, label) : diffView(diff.diff));
    } catch (error) {
      out.replaceChildren(alertBox(error.message));
    }
  });
  const rows = versions.items.map((v) =>
    h('tr', {},
      h('td', { class: 'num' }, `v${v.number}`),
      h('td', {}, when(v.created_at)),
      h('td', {}, v.author ? short(v.author) : '—'),
      h('td', {}, v.number === flow.version
        ? statusBadge('current')
        : h('button', {
            type: 'button', class: 'secondary', 'aria-label': `Restore version ${v.number}`,
            onclick: async () => {
              if (!confirm(`Make version ${v.number} current again (as a new version)?`)) return;
              try {
                await api('POST', `${path}/versions/${v.number}/restore`, { headers: { 'If-Match': `"${flow.version}"` } });
                window.dispatchEvent(new HashChangeEvent('hashchange'));
              } catch (error) {
                out.replaceChildren(alertBox(error.message));
              }
            },
          }, 'Restore'))));
  return h('section', { 'aria-labelledby': 'versions-title' },
    h('h2', { id: 'versions-title' }, 'Versions'),
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Version', 'Saved', 'Author', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)),
    versions.items.length > 1 ? [diffForm, out] : null);
}

function diffView(text) {
  if (!text) return h('p', { class: 'muted' }, 'The two versions are the same.');
  return h('pre', { class: 'diff', tabindex: 0, 'aria-label': 'Differences' }, text.replace(/\n$/, '').split('\n').map((line) => {
    const kind = line.startsWith('+++') || line.startsWith('---') ? 'file' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : '';
    return h('span', { class: `d-line ${kind}` }, line, '\n');
  }));
}

// The unified diff laid out in two columns: the old version's lines on the left, the new
// one's on the right, a removed line beside the line that replaced it.
function splitDiffView(text, label) {
  if (!text) return h('p', { class: 'muted' }, 'The two versions are the same.');
  const rows = [];
  let left = 0, right = 0, dels = [], adds = [];
  const cell = (number, line, kind) => [
    h('td', { class: 'num' }, number === null ? '' : String(number)),
    h('td', { class: `code ${kind}` }, line === null ? '' : line),
  ];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, adds.length); i++) {
      const d = dels[i], a = adds[i];
      rows.push(h('tr', {},
        cell(d ? d[0] : null, d ? d[1] : null, d ? 'del' : 'empty'),
        cell(a ? a[0] : null, a ? a[1] : null, a ? 'add' : 'empty')));
    }
    dels = []; adds = [];
  };
  for (const line of text.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('---') || line.startsWith('+++')) continue;
    const hunk = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (hunk) {
      flush();
      left = Number(hunk[1]); right = Number(hunk[2]);
      rows.push(h('tr', { class: 'hunk' }, h('td', { colspan: 4 }, line)));
    } else if (line.startsWith('-')) {
      dels.push([left++, line.slice(1)]);
    } else if (line.startsWith('+')) {
      adds.push([right++, line.slice(1)]);
    } else {
      flush();
      const same = line.slice(1);
      rows.push(h('tr', {}, cell(left++, same, ''), cell(right++, same, '')));
    }
  }
  flush();
  return h('div', { class: 'split-diff-box', tabindex: 0 },
    h('table', { class: 'split-diff', 'aria-label': `Differences between ${label}` },
      h('colgroup', {}, h('col', { class: 'n' }), h('col', {}), h('col', { class: 'n' }), h('col', {})),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', colspan: 2 }, label.split(' and ')[0]),
        h('th', { scope: 'col', colspan: 2 }, label.split(' and ')[1]))),
      h('tbody', {}, rows)));
}
