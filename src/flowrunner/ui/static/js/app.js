// The dashboard's entry point: a hash router (#/flows, #/flows/<id>, #/runs/<id>, ...) that
// shows the login form until the tab has a token.

import { session } from './api.js';
import { alertBox, clear, h } from './dom.js';
import { renderLogin } from './views/login.js';
import { renderFlows, renderNewFlow } from './views/flows.js';
import { renderFlow } from './views/flow.js';
import { renderRun } from './views/run.js';
import { renderExecutions } from './views/executions.js';
import { renderSecrets } from './views/secrets.js';
import { renderTokens } from './views/tokens.js';
import { renderWebhook, renderWebhooks } from './views/webhooks.js';
import { renderTriggers } from './views/triggers.js';

const ROUTES = [
  [/^#?\/?(?:flows)?$/, renderFlows, 'flows'],
  [/^#\/flows\/new$/, renderNewFlow, 'flows'],
  [/^#\/flows\/([^/]+)$/, renderFlow, 'flows'],
  [/^#\/runs\/([^/]+)$/, renderRun, 'executions'],
  [/^#\/executions$/, renderExecutions, 'executions'],
  [/^#\/secrets$/, renderSecrets, 'secrets'],
  [/^#\/tokens$/, renderTokens, 'tokens'],
  [/^#\/webhooks$/, renderWebhooks, 'webhooks'],
  [/^#\/webhooks\/([^/]+)$/, renderWebhook, 'webhooks'],
  [/^#\/triggers$/, renderTriggers, 'triggers'],
];

const main = document.getElementById('main');
const header = document.querySelector('header.top');
let cleanup = null;
let notice = null;

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  clear(main);
  const loggedIn = Boolean(session.token);
  header.hidden = !loggedIn;
  if (!loggedIn) {
    document.title = 'Log in — Flowrunner';
    renderLogin(main, { notice, onLogin: () => route() });
    notice = null;
    return;
  }
  document.getElementById('who').textContent = session.user || '';
  const hash = location.hash.split('?')[0];
  for (const [pattern, render, section] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    try {
      cleanup = (await render(main, ...match.slice(1).map(decodeURIComponent))) || null;
    } catch (error) {
      main.append(alertBox(error.message || String(error)));
    }
    // Move focus to the new page's heading, as a page load would for a screen reader.
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
      document.title = `${heading.textContent} — Flowrunner`;
    }
    return;
  }
  main.append(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/flows' }, 'Back to the flows')));
}

window.addEventListener('hashchange', route);
window.addEventListener('flowrunner:logged-out', (event) => {
  notice = event.detail;
  route();
});
document.getElementById('logout').addEventListener('click', () => {
  session.clear();
  notice = 'You are logged out.';
  location.hash = '#/flows';
  route();
});
route();
