// The YAML of a flow: a read-only view with light highlighting and line numbers, and an editor
// (a plain textarea) whose "Validate" lists the problems with their line:column.

import { api } from '../api.js';
import { alertBox, h } from '../dom.js';

const KEY = /^(\s*(?:- )?)([^\s#:'"][^:#]*?|"[^"]*"|'[^']*')(:)(?=\s|$)(.*)$/;

function highlightLine(line) {
  const out = [];
  let rest = line;
  const hash = rest.search(/(^|\s)#/);
  let comment = '';
  if (hash >= 0 && !/["']/.test(rest.slice(0, hash))) {
    comment = rest.slice(hash);
    rest = rest.slice(0, hash);
  }
  const match = rest.match(KEY);
  if (match) {
    out.push(match[1], h('span', { class: 'y-key' }, match[2]), match[3]);
    out.push(valueSpan(match[4]));
  } else {
    out.push(valueSpan(rest));
  }
  if (comment) out.push(h('span', { class: 'y-comment' }, comment));
  return out;
}

function valueSpan(text) {
  if (/\$\{/.test(text)) return h('span', { class: 'y-expr' }, text);
  if (/^\s*["']/.test(text)) return h('span', { class: 'y-string' }, text);
  if (/^\s*(true|false|null|-?\d[\d.]*)\s*$/.test(text)) return h('span', { class: 'y-scalar' }, text);
  return text;
}

export function yamlView(text, { problems = [] } = {}) {
  const byLine = new Map();
  for (const p of problems) if (p.line) byLine.set(p.line, [...(byLine.get(p.line) || []), p]);
  const lines = text.replace(/\n$/, '').split('\n');
  let block = -1; // the indentation of a key whose value is a block scalar (| or >)
  const code = h('code', {}, lines.map((line, i) => {
    const n = i + 1;
    const marks = byLine.get(n) || [];
    const indent = line.search(/\S/);
    let content;
    if (block >= 0 && (indent < 0 || indent > block)) {
      content = h('span', { class: 'y-block' }, line); // a script: not YAML keys
    } else {
      block = /:\s*[|>][-+0-9]*\s*(#.*)?$/.test(line) ? indent : -1;
      content = highlightLine(line);
    }
    return h('span', { class: `y-line${marks.length ? ' y-problem' : ''}`, 'data-line': n },
      h('span', { class: 'y-no', 'aria-hidden': 'true' }, String(n)), content,
      marks.map((p) => h('span', { class: 'y-note' }, `  ⚠ ${p.message}`)), '\n');
  }));
  return h('pre', { class: 'yaml', tabindex: 0, 'aria-label': 'Flow YAML' }, code);
}

export function problemList(problems) {
  if (!problems || !problems.length) return null;
  return h('ul', { class: 'problems' }, problems.map((p) =>
    h('li', { class: p.severity || 'error' },
      h('strong', {}, p.line ? `line ${p.line}${p.column ? `:${p.column}` : ''}` : p.path || ''),
      ` ${p.message}`, p.hint ? h('span', { class: 'muted' }, ` — ${p.hint}`) : null)));
}

export function yamlEditor({ id, label, value }) {
  const area = h('textarea', { id, rows: 18, spellcheck: 'false', autocapitalize: 'off', class: 'code' });
  area.value = value;
  const report = h('div', { 'aria-live': 'polite' });
  const validateButton = h('button', { type: 'button', class: 'secondary' }, 'Validate');
  function showProblems(problems) {
    report.replaceChildren();
    const list = problemList(Array.isArray(problems) ? problems : problems && problems.problems);
    if (list) report.append(list);
  }
  validateButton.addEventListener('click', async () => {
    report.replaceChildren();
    try {
      const result = await api('POST', '/flows/validate', { body: { content: area.value } });
      if (result.valid && !result.problems.length) report.append(alertBox('Valid.', 'ok'));
      else if (result.valid) report.append(alertBox('Valid, with warnings:', 'ok'), problemList(result.problems));
      else report.append(alertBox('Not valid:'), problemList(result.problems));
    } catch (error) {
      report.append(alertBox(error.message));
    }
  });
  return {
    element: h('div', { class: 'editor' }, h('label', { for: id }, label), area, report),
    validateButton,
    showProblems,
    get value() {
      return area.value;
    },
  };
}
