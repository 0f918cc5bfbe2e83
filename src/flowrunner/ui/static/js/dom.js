// Building DOM without innerHTML: every text a user or a run supplied goes in as text.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class' && !(el instanceof SVGElement)) {
      el.className = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function ms(value) {
  if (value === null || value === undefined) return '—';
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`;
}

export function pretty(value) {
  return value === undefined ? '' : JSON.stringify(value, null, 2);
}

export function short(id) {
  // Ids are ULIDs: their first characters are the time, alike for runs started together.
  return id ? id.slice(-8) : '';
}

// A message in a live region, so a screen reader hears it.
export function alertBox(message, kind = 'error') {
  return h('p', { class: `alert ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, status);
}

// `el.append` with the same skipping of null/false and flattening of arrays as `h`.
export function put(el, ...children) {
  append(el, children);
  return el;
}
