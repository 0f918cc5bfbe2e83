import { api, session } from '../api.js';
import { alertBox, h } from '../dom.js';

export function renderLogin(main, { notice, onLogin }) {
  const error = h('div', { 'aria-live': 'assertive' });
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { class: 'card login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Flowrunner'),
    notice ? alertBox(notice, 'info') : null,
    h('label', { for: 'username' }, 'Username'), username,
    h('label', { for: 'password' }, 'Password'), password,
    submit, error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.replaceChildren();
    submit.disabled = true;
    try {
      const login = await api('POST', '/login', { body: { username: username.value, password: password.value } });
      session.save(login);
      onLogin();
    } catch (failure) {
      error.append(alertBox(failure.message));
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  username.focus();
}
