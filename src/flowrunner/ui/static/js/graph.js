// The flow graph as SVG, laid out by dagre: nodes with their type and badges, labelled edges
// (error edges dashed and red), the start node marked, and a state per node for the run view.

import dagre from '../vendor/dagre/dagre.esm.js';
import { h, s, clear } from './dom.js';

const NODE_W = 180;
const NODE_H = 62;
const END = 'END';
const END_ID = '\u0000end';
export const STATES = ['idle', 'queued', 'running', 'done', 'failed', 'canceled', 'skipped'];

function labelWidth(text) {
  return Math.max(24, text.length * 7 + 10);
}

function layout(graph) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 36, ranksep: 56, edgesep: 16, marginx: 12, marginy: 24 });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(graph.nodes.map((n) => n.id));
  for (const node of graph.nodes) g.setNode(node.id, { width: NODE_W, height: NODE_H });
  for (const edge of graph.edges) {
    let target = edge.target;
    if (!ids.has(target)) {
      if (target !== END) continue; // a dangling target: validation reports it, nothing to draw
      target = END_ID;
      if (!g.hasNode(END_ID)) g.setNode(END_ID, { width: 56, height: 28 });
    }
    g.setEdge(edge.source, target, { label: edge.action, width: labelWidth(edge.action), height: 16, labelpos: 'c' }, edge.action);
  }
  dagre.layout(g);
  return g;
}

function edgePath(points) {
  const [first, ...rest] = points;
  if (rest.length < 2) return `M${first.x},${first.y} ` + rest.map((p) => `L${p.x},${p.y}`).join(' ');
  // A smooth curve through dagre's points: quadratic segments to each midpoint.
  let d = `M${first.x},${first.y}`;
  for (let i = 0; i < rest.length - 1; i++) {
    const p = rest[i];
    const q = rest[i + 1];
    d += ` Q${p.x},${p.y} ${(p.x + q.x) / 2},${(p.y + q.y) / 2}`;
  }
  const last = rest[rest.length - 1];
  return `${d} L${last.x},${last.y}`;
}

function badges(node, isStart) {
  const out = [];
  if (isStart) out.push(['start', '▶ start']);
  if (node.retries > 0) out.push(['retry', `↻ ${node.retries}`]);
  if (node.batch) out.push(['batch', `batch ${node.batch}`]);
  if (node.timeout) out.push(['timeout', `timeout ${node.timeout}`]);
  return out;
}

function describe(node, isStart, state) {
  const parts = [`node ${node.id}`, node.type];
  if (isStart) parts.push('start node');
  if (node.retries > 0) parts.push(`${node.retries} retries`);
  if (node.batch) parts.push(`batch ${node.batch}`);
  if (state && state !== 'idle') parts.push(`state ${state}`);
  return parts.join(', ');
}

/**
 * Draw `graph` (from GET /flows/{id}/graph) into `container`. `onSelect(nodeId)` is called on
 * click, Enter or Space. Returns { setState(id, state, note), select(id), mark(id, cls) }.
 */
export function drawGraph(container, graph, { onSelect, initial = 'idle' } = {}) {
  clear(container);
  if (!graph.nodes.length) {
    container.append(h('p', { class: 'muted' }, 'This flow has no nodes.'));
    return { setState() {}, select() {}, mark() {}, states: new Map() };
  }
  const g = layout(graph);
  const { width, height } = g.graph();
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const states = new Map();
  const elements = new Map();

  const svg = s('svg', {
    class: 'graph',
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    role: 'group',
    'aria-label': `Graph of ${graph.name || 'the flow'}: ${graph.nodes.length} nodes`,
  });
  svg.style.maxWidth = `${Math.ceil(width)}px`;
  svg.append(
    s('defs', {},
      s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
        s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' })),
      s('marker', { id: 'arrow-error', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
        s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow error' }))));

  const edgeLayer = s('g', { class: 'edges', 'aria-hidden': 'true' });
  for (const e of g.edges()) {
    const edge = g.edge(e);
    const isError = e.name === 'error';
    edgeLayer.append(
      s('path', { class: `edge${isError ? ' error' : ''}`, d: edgePath(edge.points), 'marker-end': `url(#${isError ? 'arrow-error' : 'arrow'})` }));
    const w = labelWidth(e.name);
    edgeLayer.append(
      s('g', { class: `edge-label${isError ? ' error' : ''}`, transform: `translate(${edge.x},${edge.y})` },
        s('rect', { x: -w / 2, y: -9, width: w, height: 18, rx: 4 }),
        s('text', { 'text-anchor': 'middle', dy: '0.35em' }, e.name)));
  }
  svg.append(edgeLayer);

  const nodeLayer = s('g', { class: 'nodes' });
  for (const id of g.nodes()) {
    const box = g.node(id);
    if (id === END_ID) {
      nodeLayer.append(
        s('g', { class: 'end', transform: `translate(${box.x},${box.y})`, 'aria-hidden': 'true' },
          s('rect', { x: -28, y: -14, width: 56, height: 28, rx: 14 }),
          s('text', { 'text-anchor': 'middle', dy: '0.35em' }, 'END')));
      continue;
    }
    const node = byId.get(id);
    const isStart = graph.start === id;
    const el = s('g', {
      class: `node state-${initial}${isStart ? ' start' : ''}`,
      transform: `translate(${box.x - NODE_W / 2},${box.y - NODE_H / 2})`,
      tabindex: 0,
      role: 'button',
      'data-node': id,
      'data-state': initial,
      'aria-label': describe(node, isStart, initial),
    });
    const title = id.length > 22 ? `${id.slice(0, 21)}…` : id;
    const type = node.type.length > 26 ? `${node.type.slice(0, 25)}…` : node.type;
    el.append(
      s('title', {}, node.description ? `${id} (${node.type}): ${node.description}` : `${id} (${node.type})`),
      s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 8 }),
      s('text', { class: 'node-id', x: 10, y: 20 }, title),
      s('text', { class: 'node-type', x: 10, y: 36 }, type),
      s('text', { class: 'node-state', x: NODE_W - 8, y: 20, 'text-anchor': 'end' }, initial === 'idle' ? '' : initial));
    let bx = 8;
    for (const [kind, text] of badges(node, isStart)) {
      const w = labelWidth(text) - 4;
      el.append(
        s('g', { class: `node-badge ${kind}`, transform: `translate(${bx},${NODE_H - 20})` },
          s('rect', { width: w, height: 15, rx: 7 }),
          s('text', { x: w / 2, y: 11, 'text-anchor': 'middle' }, text)));
      bx += w + 4;
    }
    const choose = () => onSelect && onSelect(id);
    el.addEventListener('click', choose);
    el.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        choose();
      }
    });
    elements.set(id, el);
    states.set(id, initial);
    nodeLayer.append(el);
  }
  svg.append(nodeLayer);
  container.append(h('div', { class: 'graph-scroll' }, svg));

  return {
    states,
    setState(id, state, note = '') {
      const el = elements.get(id);
      if (!el) return;
      el.classList.remove(`state-${states.get(id)}`);
      el.classList.add(`state-${state}`);
      el.setAttribute('data-state', state);
      states.set(id, state);
      el.querySelector('.node-state').textContent = note || state;
      el.setAttribute('aria-label', describe(byId.get(id), graph.start === id, state));
    },
    select(id) {
      for (const [nodeId, el] of elements) el.classList.toggle('selected', nodeId === id);
    },
    mark(id, cls) {
      const el = elements.get(id);
      if (el) el.classList.add(cls);
    },
  };
}
