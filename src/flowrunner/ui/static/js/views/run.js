// A run: the graph of its pinned version with live node states over the WebSocket, the event
// log, each node's events and output on click, the final output or error, cancel and retry.
// A finished run replays the same way: subscribing from seq 0 sends its stored events first.

import { api, session } from '../api.js';
import { alertBox, clear, h, ms, pretty, put, short, statusBadge, when } from '../dom.js';
import { drawGraph } from '../graph.js';

const FINAL = new Set(['completed', 'failed', 'canceled']);
const MAX_LOG_LINES = 2000; // the log view keeps the newest; the API has them all
const MAX_RECONNECTS = 5;
const NODE_STATE = { started: 'running', retrying: 'running', finished: 'done', failed: 'failed', canceled: 'canceled' };

export async function renderRun(main, executionId) {
  const path = `/executions/${encodeURIComponent(executionId)}`;
  let execution = await api('GET', path);
  let graphProblem = null;
  // A deleted flow's runs stay readable, but its graph is gone: show the events without it.
  const graph = await api('GET', `/flows/${encodeURIComponent(execution.flow_id)}/graph?version=${execution.flow_version}`)
    .catch((error) => {
      graphProblem = `The flow's graph is not available: ${error.message}`;
      return { flow_id: execution.flow_id, name: '', start: null, nodes: [], edges: [] };
    });

  const badge = h('span', { id: 'run-status', role: 'status', 'aria-live': 'polite' }, statusBadge(execution.status));
  const cancel = h('button', { type: 'button', class: 'danger', id: 'cancel-run' }, 'Cancel run');
  const retry = h('button', { type: 'button', class: 'secondary', id: 'retry-run' }, 'Retry');
  const notes = h('div', { 'aria-live': 'assertive' });
  const result = h('section', { class: 'result', 'aria-labelledby': 'result-title' });
  const details = h('div', { class: 'node-details', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Select a node to see its events and output.'));
  const log = h('ol', { class: 'event-log', id: 'event-log', 'aria-label': 'Events' });
  const graphBox = h('div', { class: 'graph-box' });

  const nodeEvents = new Map(); // node id -> its node/log events, in order
  // node id -> { from, value }: what the node got as input on its latest visit. A node's input
  // is the output of the node that routed to it (an error edge hands on the failed node's
  // input); the first node's is the run's input.
  const inputs = new Map();
  let selected = null;
  let lastSeq = 0;
  let ended = false;
  const view = drawGraph(graphBox, graph, { onSelect: (id) => showNode(id), initial: 'queued' });

  function setStatus(status) {
    execution.status = status;
    badge.replaceChildren(statusBadge(status));
    cancel.disabled = FINAL.has(status);
    retry.hidden = !(status === 'failed' || status === 'canceled');
  }

  function showNode(id) {
    selected = id;
    view.select(id);
    const events = nodeEvents.get(id) || [];
    const last = [...events].reverse().find((e) => e.type === 'node' && e.data.state !== 'started');
    const logs = events.filter((e) => e.type === 'log');
    put(clear(details), 
      h('h3', {}, id),
      h('dl', {},
        h('dt', {}, 'State'), h('dd', { class: 'node-detail-state' }, view.states.get(id) || '—'),
        last && last.data.attempt ? [h('dt', {}, 'Attempts'), h('dd', {}, String(last.data.attempt))] : null,
        last && last.data.duration_ms !== undefined ? [h('dt', {}, 'Duration'), h('dd', {}, ms(last.data.duration_ms))] : null,
        last && last.data.action ? [h('dt', {}, 'Action'), h('dd', {}, `${last.data.action}${last.data.next_node ? ` → ${last.data.next_node}` : ''}`)] : null),
      inputs.has(id) ? [h('h4', {}, `Input (${inputs.get(id).from})`), h('pre', { class: 'json node-input', tabindex: 0 }, pretty(inputs.get(id).value))] : null,
      last && last.data.error ? [h('h4', {}, 'Error'), h('pre', { class: 'json error-json', tabindex: 0 }, pretty(last.data.error))] : null,
      last && 'output' in last.data ? [h('h4', {}, 'Output'), h('pre', { class: 'json', tabindex: 0 }, pretty(last.data.output))] : null,
      logs.length ? [h('h4', {}, 'Logs'), h('ul', { class: 'node-logs' }, logs.map((e) => h('li', {}, `[${e.data.level}] ${e.data.message}`)))] : null,
      events.length ? null : h('p', { class: 'muted' }, 'This node has not run.'));
  }

  function logLine(message) {
    const d = message.data || {};
    let text = message.type;
    if (message.type === 'node') text = `node ${d.node_id} ${d.state}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}${d.duration_ms !== undefined ? ` in ${ms(d.duration_ms)}` : ''}`;
    else if (message.type === 'status') text = `status ${d.status}${d.resumed ? ` (resumed at ${d.from_node})` : ''}`;
    else if (message.type === 'log') text = `log ${d.node_id ? `${d.node_id}: ` : ''}[${d.level}] ${d.message}`;
    else if (message.type === 'complete') text = 'completed';
    else if (message.type === 'error') text = `failed: ${d.error ? d.error.message : ''}`;
    if (d.flow_path) text = `${d.flow_path.join(' › ')} › ${text}`;
    const item = h('li', { class: `ev ev-${message.type}`, 'data-seq': message.seq },
      h('span', { class: 'seq' }, `#${message.seq}`), ' ',
      h('time', { datetime: message.time }, new Date(message.time).toLocaleTimeString()), ' ', text);
    log.append(item);
    while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
  }

  function trackInput(d) {
    if (d.state === 'started' && !inputs.has(d.node_id)) {
      inputs.set(d.node_id, { from: 'the run input', value: execution.input });
    } else if (d.next_node && d.state === 'finished') {
      inputs.set(d.next_node, { from: `output of ${d.node_id}`, value: d.output });
    } else if (d.next_node && d.state === 'failed') {
      const had = inputs.get(d.node_id);
      inputs.set(d.next_node, { from: `input of ${d.node_id}, which failed`, value: had ? had.value : null });
    }
  }

  function apply(message) {
    if (typeof message.seq === 'number') {
      if (message.seq <= lastSeq) return; // a replayed duplicate after a reconnect
      lastSeq = message.seq;
    }
    logLine(message);
    const d = message.data || {};
    if (message.type === 'node' || message.type === 'log') {
      if (d.flow_path && d.flow_path.length) return; // inside a sub-flow: its own run view
      if (!d.node_id) return;
      nodeEvents.set(d.node_id, [...(nodeEvents.get(d.node_id) || []), message]);
      if (message.type === 'node') trackInput(d);
      if (message.type === 'node') {
        const state = NODE_STATE[d.state] || d.state;
        const note = d.state === 'retrying' ? `retry ${d.attempt || ''}`.trim() : d.duration_ms !== undefined && state !== 'running' ? `${state} · ${ms(d.duration_ms)}` : state;
        view.setState(d.node_id, state, note);
      }
      if (selected === d.node_id) showNode(selected);
    } else if (message.type === 'status') {
      if (d.status) setStatus(d.status);
      // A durable wait (docs/waiting.md): say where and for what; it clears once resumed.
      if (d.status === 'waiting') {
        const what = d.signal ? `signal "${d.signal}"` : 'its timer';
        const until = d.wake_at ? ` (until ${when(d.wake_at)})` : '';
        notes.replaceChildren(alertBox(`Waiting at ${d.node_id} for ${what}${until}.`, 'info'));
      } else if (d.status === 'running' && d.resumed) {
        notes.replaceChildren();
      }
    } else if (message.type === 'complete' || message.type === 'error') {
      setStatus(d.status || (message.type === 'complete' ? 'completed' : 'failed'));
    }
  }

  async function finish() {
    ended = true;
    execution = await api('GET', path);
    setStatus(execution.status);
    for (const [id, state] of view.states) {
      if (state === 'queued') view.setState(id, 'skipped');
      else if (state === 'running' && execution.status === 'canceled') view.setState(id, 'canceled');
    }
    showResult();
  }

  function showResult() {
    clear(result).append(h('h2', { id: 'result-title' }, 'Result'));
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'Started'), h('dd', {}, when(execution.started_at)),
      h('dt', {}, 'Finished'), h('dd', {}, when(execution.finished_at)),
      h('dt', {}, 'Duration'), h('dd', {}, ms(execution.duration_ms)));
    result.append(facts);
    if (execution.status === 'completed') {
      put(result, h('h3', {}, 'Output'), h('pre', { class: 'json', id: 'run-output', tabindex: 0 }, pretty(execution.output)));
    } else if (execution.error) {
      const culprit = execution.error.node_id;
      if (culprit) view.mark(culprit, 'culprit');
      put(result, 
        alertBox(`${execution.status === 'canceled' ? 'Canceled' : 'Failed'}${culprit ? ` at node ${culprit}` : ''}: ${execution.error.message || ''}`),
        culprit ? h('button', { type: 'button', class: 'secondary', onclick: () => showNode(culprit) }, `Show node ${culprit}`) : null,
        h('pre', { class: 'json error-json', id: 'run-error', tabindex: 0 }, pretty(execution.error)));
    } else {
      put(result, h('p', {}, `The run ended ${execution.status}.`));
    }
  }

  // The live stream. Authenticated by a first message, so the token stays out of URLs (logs).
  let socket = null;
  let reconnects = 0;
  let closing = false;
  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'auth', token: session.token }));
      socket.send(JSON.stringify({ type: 'subscribe', execution_id: execution.id, after_seq: lastSeq }));
    });
    socket.addEventListener('message', (frame) => {
      const message = JSON.parse(frame.data);
      if (message.type === 'end') {
        closing = true;
        socket.close();
        finish().catch((error) => notes.replaceChildren(alertBox(error.message)));
      } else if (message.type === 'error' && message.error && typeof message.seq !== 'number') {
        notes.replaceChildren(alertBox(`Live updates: ${message.error.message}`));
      } else if (message.type !== 'subscribed' && message.type !== 'pong') {
        reconnects = 0;
        apply(message);
      }
    });
    socket.addEventListener('close', (event) => {
      if (closing || ended) return;
      if (event.code === 4401 || reconnects >= MAX_RECONNECTS) {
        notes.replaceChildren(alertBox('Live updates stopped: reload the page to try again.'));
        return;
      }
      reconnects += 1;
      setTimeout(() => !closing && connect(), 500 * reconnects); // resumes after lastSeq
    });
  }

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await api('POST', `${path}/cancel`);
      notes.replaceChildren(alertBox('Cancel requested.', 'info'));
    } catch (error) {
      notes.replaceChildren(alertBox(error.message));
      cancel.disabled = FINAL.has(execution.status);
    }
  });
  retry.addEventListener('click', async () => {
    try {
      const again = await api('POST', `${path}/retry`, { body: { resume: false } });
      location.hash = `#/runs/${encodeURIComponent(again.execution_id)}`;
    } catch (error) {
      notes.replaceChildren(alertBox(error.message));
    }
  });

  put(main, 
    h('div', { class: 'title-row' },
      h('div', { class: 'title-main' }, h('h1', {}, `Run ${short(execution.id)}`), badge),
      h('div', { class: 'actions' }, cancel, retry)),
    h('p', { class: 'muted' },
      'Flow ', h('a', { href: `#/flows/${encodeURIComponent(graph.flow_id)}` }, graph.name || execution.flow_id),
      ` · version ${execution.flow_version} · created ${when(execution.created_at)} · id `, h('code', {}, execution.id)),
    notes,
    h('section', { 'aria-labelledby': 'run-graph-title' },
      h('h2', { id: 'run-graph-title' }, 'Graph'),
      h('div', { class: 'split' }, graphBox, details)),
    result,
    h('section', { 'aria-labelledby': 'log-title' },
      h('h2', { id: 'log-title' }, 'Event log'), log),
    h('details', { class: 'card' }, h('summary', {}, 'Run input'), h('pre', { class: 'json' }, pretty(execution.input))));
  if (graphProblem) notes.append(alertBox(graphProblem, 'info'));
  setStatus(execution.status);
  connect();
  return () => {
    closing = true;
    if (socket) socket.close();
  };
}
