// The shell: sign-in, navigation by role, the connection state, and pages.
import { useEffect, useState } from 'preact/hooks';
import { api, atLeast, get, Me, onUnauthorized } from './api';
import { live } from './live';
import { AlertsPage } from './pages/Alerts';
import { AuditPage } from './pages/Audit';
import { ContainerPage } from './pages/Container';
import { AppsPage } from './pages/Apps';
import { ContainersPage } from './pages/Containers';
import { ImagesPage } from './pages/Images';
import { GpuPage } from './pages/Gpu';
import { HostPage } from './pages/Host';
import { ChangePassword, Login } from './pages/Login';
import { pendingChanged, useLive } from './hooks';
import { Overview } from './pages/Overview';
import { ServersPage } from './pages/Servers';
import { DeployPage } from './pages/Deploy';
import { SettingsPage } from './pages/Settings';
import { TokensPage, UsersPage } from './pages/Users';
import { match, navigate, useLocation } from './router';
import { Link, Page } from './ui';

function Connection() {
  useLive();
  const [, tick] = useState(0);
  useEffect(() => {
    if (live.state !== 'offline') return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [live.state]);
  const label = live.state === 'live' ? 'live' : live.state === 'connecting' ? 'connecting…' : 'disconnected, reconnecting';
  return <span class={`conn ${live.state}`} role="status" aria-live="polite" data-testid="conn">{label}</span>;
}

/** Sign-ups waiting for an admin (read every 30 s, and when the users page
 * says it changed them). */
function PendingBadge() {
  const [n, setN] = useState(0);
  useEffect(() => {
    let alive = true;
    const read = () => get<any>('/api/v1/users').then((r) => alive && setN((r.users ?? []).filter((u: any) => u.pending).length), () => {});
    read();
    const t = setInterval(read, 30000);
    pendingChanged.addEventListener('change', read);
    return () => {
      alive = false;
      clearInterval(t);
      pendingChanged.removeEventListener('change', read);
    };
  }, []);
  return n ? <span class="count" data-testid="pending-badge" aria-label={`${n} waiting for approval`}>{n}</span> : null;
}

function AlertBadge() {
  useLive();
  const n = live.firing;
  return n ? <span class="count" data-testid="alert-badge" aria-label={`${n} firing`}>{n}</span> : null;
}

function Nav({ me, path }: { me: Me; path: string }) {
  const item = (href: string, text: string, extra?: any) => {
    const here = href === '/' ? path === '/' || path.startsWith('/hosts') : path.startsWith(href);
    return <li><Link href={href} aria-current={here ? 'page' : undefined}>{text}{extra}</Link></li>;
  };
  return (
    <nav aria-label="main">
      <ul>
        {item('/', 'Fleet')}
        {item('/containers', 'Containers')}
        {item('/apps', 'Apps')}
        {item('/images', 'Images')}
        {item('/alerts', 'Alerts', <AlertBadge />)}
        {item('/servers', 'Servers')}
        {item('/tokens', 'Tokens')}
        {atLeast(me.role, 'admin') && item('/users', 'Users', <PendingBadge />)}
        {atLeast(me.role, 'admin') && item('/audit', 'Audit')}
        {atLeast(me.role, 'admin') && item('/deploy', 'Deploy')}
        {item('/settings', 'Settings')}
      </ul>
    </nav>
  );
}

function Routes({ me, path }: { me: Me; path: string }) {
  let m: Record<string, string> | null;
  if (path === '/' || path === '') return <Overview />;
  if ((m = match('/hosts/:name/gpus/:uuid', path))) return <GpuPage server={m.name} uuid={m.uuid} />;
  if ((m = match('/hosts/:name', path))) return <HostPage name={m.name} />;
  if (path === '/servers') return <ServersPage role={me.role} />;
  if (path === '/containers') return <ContainersPage me={me} />;
  if (path === '/apps') return <AppsPage me={me} />;
  if ((m = match('/containers/:id', path))) return <ContainerPage id={m.id} me={me} />;
  if (path === '/images') return <ImagesPage me={me} />;
  if (path === '/alerts') return <AlertsPage role={me.role} />;
  if (path === '/tokens') return <TokensPage me={me} />;
  if (path === '/users' || path === '/audit' || path === '/deploy') {
    if (!atLeast(me.role, 'admin'))
      return (
        <Page title={path === '/users' ? 'Users' : path === '/audit' ? 'Audit' : 'Deploy'}>
          <p class="error" role="alert" data-testid="needs-role">This page needs the admin role; you are signed in as {me.username} ({me.role}). An admin can change your role.</p>
        </Page>
      );
    return path === '/users' ? <UsersPage me={me} /> : path === '/audit' ? <AuditPage /> : <DeployPage />;
  }
  if (path === '/settings') return <SettingsPage role={me.role} />;
  if (path === '/account') return <Page title="Change password"><ChangePassword me={me} onDone={() => navigate('/')} /></Page>;
  return <Page title="Not found"><p>There is no page at {path}. <Link href="/">Back to the fleet</Link></p></Page>;
}

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const { path } = useLocation();

  useEffect(() => {
    onUnauthorized(() => {
      live.stop();
      setMe(null);
    });
    api<Me>('GET', '/api/v1/auth/me').then(setMe, () => setMe(null));
  }, []);
  useEffect(() => {
    if (me && !me.must_change_password) live.start();
  }, [me]);

  if (me === undefined) return <p class="muted boot">Loading…</p>;
  if (me === null) return <Login onDone={setMe} />;
  if (me.must_change_password)
    return <ChangePassword me={me} forced onDone={() => setMe({ ...me, must_change_password: false })} />;
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <Link href="/" class="brand">gpufleet</Link>
        <Nav me={me} path={path} />
        <div class="me">
          <Connection />
          <Link href="/account" title="change password">{me.username} <span class="muted">({me.role})</span></Link>
          <button type="button" onClick={async () => {
            try {
              await api('POST', '/api/v1/auth/logout');
            } catch {
              /* signed out either way */
            }
            live.stop();
            setMe(null);
            navigate('/', true);
          }}>Sign out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes me={me} path={path} />
      </main>
    </>
  );
}
