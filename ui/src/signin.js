import { useState } from 'preact/hooks';
import { ApiError, claims, get, signIn, signOut } from './api.js';
import { html } from './util.js';

// Sign in with a token: it is checked against the API (GET /internal/v1/runtimes takes any valid
// token) before it is kept, in sessionStorage only.
export function SignIn({ reason }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    const t = value.trim();
    if (!t) {
      setError('Paste a token first.');
      return;
    }
    if (!claims(t)) {
      setError('That is not a JWT (three base64url parts separated by dots).');
      return;
    }
    setBusy(true);
    setError(null);
    sessionStorage.setItem('hks.token', t);
    try {
      await get('/internal/v1/runtimes');
      signIn(t);
    } catch (err) {
      signOut();
      setError(err instanceof ApiError && err.status === 401 ? `The token was refused: ${err.message}` : String(err.message || err));
    } finally {
      setBusy(false);
    }
  };

  return html`<main id="main" class="signin">
    <h1>Sign in to HKS Functions</h1>
    ${reason && html`<p class="note" role="status">${reason}</p>`}
    <form onSubmit=${submit} novalidate>
      <label for="token">API token</label>
      <textarea id="token" name="token" rows="4" autocomplete="off" spellcheck="false" aria-describedby="token-help" aria-invalid=${error ? 'true' : 'false'} value=${value} onInput=${(e) => setValue(e.currentTarget.value)}></textarea>
      <p id="token-help" class="help">A JWT from <code>hksd token</code> (for example with the scopes
        <code>functions:read functions:invoke functions:delete cronjobs:read cronjobs:write</code>). It is kept in this tab only and sent only to this server.</p>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit" disabled=${busy}>${busy ? 'Checking…' : 'Sign in'}</button>
    </form>
  </main>`;
}
