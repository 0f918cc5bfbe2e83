// The same-origin API: a fetch wrapper that adds the session's token and reads the error envelope.

const TOKEN = 'flowrunner.token';
const USER = 'flowrunner.user';
export const API = '/api/v1';

// The token lives in sessionStorage: it goes with the tab, not to other tabs or the next visit.
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  get user() {
    return sessionStorage.getItem(USER);
  },
  save(login) {
    sessionStorage.setItem(TOKEN, login.token);
    sessionStorage.setItem(USER, login.username);
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function api(method, path, { body, headers = {}, yaml = false } = {}) {
  const sent = { Accept: 'application/json', ...headers };
  if (session.token) sent.Authorization = `Bearer ${session.token}`;
  let payload;
  if (body !== undefined) {
    payload = yaml ? body : JSON.stringify(body);
    sent['Content-Type'] = yaml ? 'application/yaml' : 'application/json';
  }
  // credentials: 'omit' — no cookies are used, and a 401 must not open the browser's own
  // Basic-auth dialog.
  const response = await fetch(API + path, { method, headers: sent, body: payload, credentials: 'omit' });
  if (response.status === 401 && session.token && path !== '/login') {
    session.clear();
    window.dispatchEvent(new CustomEvent('flowrunner:logged-out', { detail: 'Your session ended: log in again.' }));
  }
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      // not the JSON envelope (a proxy's page): the status says enough
    }
    throw new ApiError(response.status, error.code, error.message || response.statusText, error.details);
  }
  if (response.status === 204) return null;
  const result = await response.json();
  const etag = response.headers.get('ETag');
  if (etag && result && typeof result === 'object') Object.defineProperty(result, 'etag', { value: etag });
  return result;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === '') continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, item);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
