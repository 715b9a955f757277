// The login page: an API token (from `e911-server token create`, or the
// admin-token file written on first start) becomes an HttpOnly session cookie.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, type Api } from '../api.js';

export function Login({ api, onLogin }: { api: Api; onLogin: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Log in · E911 admin';
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.post('/api/session', { token: token.trim() });
      onLogin();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That token is unknown or revoked.' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">E911 admin</h1>
        <p>Log in with an API token.</p>
        <div class={`field${error ? ' invalid' : ''}`}>
          <label for="token">API token</label>
          <input
            id="token"
            name="token"
            type="password"
            autoComplete="current-password"
            required
            value={token}
            aria-invalid={error ? 'true' : undefined}
            aria-describedby="token-help"
            onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
          />
          <small id="token-help" class="hint">
            The server writes one to <code>admin-token</code> in its data folder on first start; <code>e911-server token create NAME</code>{' '}
            makes more.
          </small>
        </div>
        {error ? (
          <p class="notice error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
