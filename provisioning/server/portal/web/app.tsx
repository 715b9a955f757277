// The portal shell: login gate, navigation, the hash router, the live event
// stream and the on-site 911 alert that shows on every page.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api, ApiError } from './api.js';
import { LiveStream, type LiveState } from './live.js';
import { Alarm } from './alarm.js';
import { AppContext, type Ctx } from './ui.js';
import { EmergencyAlerts } from './alerts.js';
import { Login } from './pages/login.js';
import { Dashboard } from './pages/dashboard.js';
import { LocationsPage } from './pages/locations.js';
import { UsersPage } from './pages/users.js';
import { AccountPage } from './pages/account.js';
import { BulkPage } from './pages/bulk.js';
import { CsvPage } from './pages/csv.js';
import { NotificationsPage } from './pages/notifications.js';
import { PhonesPage } from './pages/phones.js';
import { CallsPage } from './pages/calls.js';
import { AuditPage } from './pages/audit.js';

import type { RouteProps } from './route.js';

const ROUTES: { path: string; label: string; page: (p: RouteProps) => preact.JSX.Element }[] = [
  { path: '', label: 'Dashboard', page: Dashboard },
  { path: 'locations', label: 'Locations', page: LocationsPage },
  { path: 'users', label: 'Users', page: UsersPage },
  { path: 'account', label: 'Account', page: AccountPage },
  { path: 'bulk', label: 'Bulk update', page: BulkPage },
  { path: 'csv', label: 'CSV', page: CsvPage },
  { path: 'notifications', label: 'Notifications', page: NotificationsPage },
  { path: 'phones', label: 'Phones', page: PhonesPage },
  { path: 'calls', label: 'Emergency calls', page: CallsPage },
  { path: 'audit', label: 'Audit log', page: AuditPage },
];

function parseHash(hash: string): { path: string; params: string[] } {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { path: parts[0] ?? '', params: parts.slice(1) };
}

type Auth = 'checking' | 'out' | 'in' | 'unreachable';

export function App() {
  const [auth, setAuth] = useState<Auth>('checking');
  const [route, setRoute] = useState(() => parseHash(location.hash));
  const [liveState, setLiveState] = useState<LiveState>('closed');
  const api = useMemo(() => new Api(() => setAuth('out')), []);
  // When the stream is refused, one API call tells a revoked session (401: the login page) from a server away.
  const live = useMemo(
    () =>
      new LiveStream(
        () => setAuth('out'),
        () => void api.get('/api/account').catch((e: Error) => console.warn(`live stream refused: ${e.message}`)),
      ),
    [api],
  );
  const alarm = useMemo(() => new Alarm(), []);
  const ctx: Ctx = useMemo(() => ({ api, live, navigate: (h: string) => (location.hash = h) }), [api, live]);

  const [checkError, setCheckError] = useState('');
  // The portal shows one account: the token's, or for a provider the one its session chose.
  const [account, setAccount] = useState({ id: '', name: '' });
  // Every account, when the token is a provider's (its account picker); null for an account's admin.
  const [accounts, setAccounts] = useState<{ id: string; name: string }[] | null>(null);
  const check = () =>
    api.get<{ id: string; name: string; provider: boolean }>('/api/account').then(
      (a) => {
        setAccount({ id: a.id, name: a.name || a.id });
        setAuth('in');
        if (a.provider) api.get<{ id: string; name: string }[]>('/api/accounts').then(setAccounts, () => setAccounts(null));
      },
      // Only a refused token means "log in"; a server that does not answer is said as such.
      (e: Error) => {
        if (e instanceof ApiError && e.status === 401) setAuth('out');
        else {
          setCheckError(e.message);
          setAuth('unreachable');
        }
      },
    );
  useEffect(() => {
    void check();
    const onHash = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, [api]);

  useEffect(() => {
    if (auth !== 'in') return live.close();
    const off = live.onState(setLiveState);
    live.open();
    return () => {
      off();
      live.close();
    };
  }, [auth, live]);

  // A new page: move focus to its heading, so keyboard and screen reader users start there.
  useEffect(() => {
    document.getElementById('page-title')?.focus();
  }, [route.path, route.params.join('/')]);

  if (auth === 'checking') return <p class="loading">Loading…</p>;
  if (auth === 'unreachable')
    return (
      <main class="login">
        <div class="notice error" role="alert">
          <p>The provisioning server did not answer: {checkError}</p>
          <button
            type="button"
            onClick={() => {
              setAuth('checking');
              void check();
            }}
          >
            Try again
          </button>
        </div>
      </main>
    );
  if (auth === 'out')
    return (
      <Login
        api={api}
        onLogin={() => {
          alarm.unlock();
          void check();
        }}
      />
    );

  const current = ROUTES.find((r) => r.path === route.path);
  const Current = current?.page;
  return (
    <AppContext.Provider value={ctx}>
      {/* biome-ignore lint/a11y/useValidAnchor: a skip link is a link; the hash belongs to the router, so the click moves focus instead of navigating */}
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('page-title')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">E911 admin</span>
        {accounts ? (
          <label class="account" title="The account this session shows and changes">
            Account{' '}
            <select
              value={account.id}
              onChange={(e) => {
                const id = (e.target as HTMLSelectElement).value;
                // Reloaded afterwards: every page, and the live stream, then belong to the chosen account.
                api.put('/api/session/account', { id }).then(
                  () => location.reload(),
                  (err: Error) => window.alert(`The account could not be shown: ${err.message}`),
                );
              }}
            >
              {accounts.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name || a.id}
                </option>
              ))}
            </select>
          </label>
        ) : (
          <span class="account" title="The account this session administers">
            {account.name}
          </span>
        )}
        <nav aria-label="Main">
          <ul>
            {ROUTES.map((r) => (
              <li key={r.path}>
                <a href={`#/${r.path}`} aria-current={r.path === route.path ? 'page' : undefined}>
                  {r.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class={`live ${liveState}`} role="status" title="Live updates from the server">
          {liveState === 'open' ? 'Live' : liveState === 'connecting' ? 'Reconnecting…' : 'Offline'}
        </span>
        <button
          type="button"
          class="link"
          onClick={async () => {
            await api.delete('/api/session').catch((e: Error) => console.warn(`log out: ${e.message}`));
            setAuth('out');
          }}
        >
          Log out
        </button>
      </header>
      <EmergencyAlerts alarm={alarm} />
      <main id="main">{Current ? <Current params={route.params} /> : <NotFound />}</main>
    </AppContext.Provider>
  );
}

function NotFound() {
  return (
    <section class="page">
      <h1 id="page-title" tabIndex={-1}>
        Page not found
      </h1>
      <p>
        <a href="#/">Back to the dashboard</a>
      </p>
    </section>
  );
}
