// The registry: add, edit, remove servers and check that their agents answer.
import { useEffect, useState } from 'preact/hooks';
import { api, atLeast, fieldError, get, Role } from '../api';
import { Terminal } from './Terminal';
import { fleet } from '../fleet';
import { ago } from '../format';
import { ErrorBox, errorText, Field, Form, labelsText, Link, Page, parseLabels, Secret, useAsync } from '../ui';
import { useFleet } from '../hooks';
import { OfflineNote } from '../offline';
import { HealthPanel } from './Health';



function body(f: FormData) {
  const port = String(f.get('agent_port') || '9445');
  if (!/^\d+$/.test(port)) throw fieldError('agent_port', 'a number from 1 to 65535');
  return { name: f.get('name'), address: f.get('address'), agent_port: parseInt(port, 10), labels: parseLabels(String(f.get('labels') ?? '')) };
}

export function ServersPage({ role }: { role: Role }) {
  useFleet();
  const can = atLeast(role, 'operator');
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<number | null>(null);
  const [token, setToken] = useState<{ name: string; token: string } | null>(null);
  const [checks, setChecks] = useState<Record<number, string>>({});
  const [error, setError] = useState('');
  const [shell, setShell] = useState<string | null>(null); // a host's name
  const targets = useAsync(() => get<any>('/api/v1/targets'), []);
  // the targets follow the scraper, read again every 2 s while shown: a new
  // target shows, a removed one goes, each with its last scrape
  useEffect(() => {
    const t = setInterval(targets.reload, 2000);
    return () => clearInterval(t);
  }, []);
  const list = fleet.order.map((n) => fleet.servers.get(n)!);

  return (
    <Page title="Servers" actions={can && <button type="button" class="primary" onClick={() => setAdding(!adding)} aria-expanded={adding}>Add server</button>}>
      {token && <Secret label={`Agent token for ${token.name} (its --token-file)`} value={token.token} onDone={() => setToken(null)} />}
      {adding && can && (
        <Form label="Add server" class="form inline" onSubmit={async (f) => {
          const r = await api<any>('POST', '/api/v1/servers', body(f));
          setAdding(false);
          if (r.agent_token) setToken({ name: r.name, token: r.agent_token });
          await fleet.resync();
        }}>
          <Field label="Name" name="name" required placeholder="gpu-node-01" />
          <Field label="Address" name="address" required placeholder="10.0.0.21" />
          <Field label="Agent port" name="agent_port" value="9445" />
          <Field label="Labels" name="labels" placeholder="rack=r1, team=vision" />
          <button type="submit" class="primary">Add</button>
        </Form>
      )}
      <ErrorBox error={error} />
      <table class="table" aria-label="servers">
        <thead><tr><th>Name</th><th>Address</th><th>Status</th><th>GPUs</th><th>Labels</th>{can && <th><span class="sr-only">Actions</span></th>}</tr></thead>
        <tbody>
          {list.map((s) => editing === s.id ? (
            <tr><td colSpan={6}>
              <Form label={`Edit ${s.name}`} class="form inline" onSubmit={async (f) => {
                await api('PATCH', `/api/v1/servers/${s.id}`, body(f));
                setEditing(null);
                await fleet.resync();
              }}>
                <Field label="Name" name="name" value={s.name} required />
                <Field label="Address" name="address" value={s.address} required />
                <Field label="Agent port" name="agent_port" value={String(s.agent_port)} />
                <Field label="Labels" name="labels" value={labelsText(s.labels)} />
                <button type="submit" class="primary">Save</button>
                <button type="button" onClick={() => setEditing(null)}>Cancel</button>
              </Form>
            </td></tr>
          ) : (
            <tr data-server={s.name}>
              <td><Link href={`/hosts/${encodeURIComponent(s.name)}`}>{s.name}</Link></td>
              <td>{s.address}:{s.agent_port}</td>
              <td><span class={`badge ${s.online ? 'online' : s.online === false ? 'offline' : 'unknown'}`}>{s.online ? 'online' : s.online === false ? 'offline' : 'unknown'}</span>
                <OfflineNote s={s} />
                {checks[s.id] && <div class="small" role="status">{checks[s.id]}</div>}</td>
              <td>{s.gpus.length}</td>
              <td>{labelsText(s.labels)}</td>
              {can && (
                <td class="row-actions">
                  <button type="button" onClick={async () => {
                    setChecks({ ...checks, [s.id]: 'checking…' });
                    try {
                      const r = await api<any>('POST', `/api/v1/servers/${s.id}/check`);
                      setChecks((c) => ({ ...c, [s.id]: r.reachable ? `reachable in ${Math.round(r.latency_ms ?? 0)} ms, agent ${r.agent_version ?? '?'}, ${r.gpu_count ?? 0} GPUs` : `unreachable: ${r.error ?? 'no answer'}` }));
                    } catch (e) {
                      setChecks((c) => ({ ...c, [s.id]: errorText(e) }));
                    }
                  }}>Check</button>
                  {role === 'admin' && <button type="button" onClick={() => setShell(s.name)} title="a shell on the host over SSH, with the fleet's key">Shell</button>}
                  <button type="button" onClick={() => setEditing(s.id)}>Edit</button>
                  <button type="button" class="danger" onClick={async () => {
                    if (!confirm(`Remove ${s.name}? Its stored history stays.`)) return;
                    try {
                      await api('DELETE', `/api/v1/servers/${s.id}`);
                      await fleet.resync();
                    } catch (e) {
                      setError(errorText(e));
                    }
                  }}>Remove</button>
                </td>
              )}
            </tr>
          ))}
          {list.length === 0 && <tr><td colSpan={6} class="muted">No servers yet.</td></tr>}
        </tbody>
      </table>
      {shell && <Terminal path={`/api/v1/servers/${encodeURIComponent(shell)}/shell`} title={`Shell on ${shell}`} onClose={() => setShell(null)} />}
      <HealthPanel />
      <h2>Scrape targets</h2>
      <table class="table" aria-label="scrape targets">
        <thead><tr><th>Server</th><th>Job</th><th>URL</th><th>Up</th><th>Last scrape</th><th>Duration</th><th>Samples</th><th>Error</th></tr></thead>
        <tbody>
          {(targets.data?.targets ?? []).map((t: any) => (
            <tr data-target={t.url}><td>{t.server}</td><td>{t.job}</td><td class="mono small">{t.url}</td>
              <td><span class={`badge ${!t.scraped ? 'unknown' : t.up ? 'online' : 'offline'}`}>{!t.scraped ? 'not yet' : t.up ? 'up' : 'down'}</span></td>
              <td>{ago(t.last_scrape_ms)}</td><td>{t.last_duration_s != null && t.scraped ? (t.last_duration_s * 1000).toFixed(1) + ' ms' : '–'}</td><td>{t.last_samples}</td><td class="small">{t.last_error}</td></tr>
          ))}
          {targets.data && !targets.data.targets?.length && <tr><td colSpan={8} class="muted">No scrape targets: add a server.</td></tr>}
          {targets.error && <tr><td colSpan={8} class="error">{targets.error}</td></tr>}
        </tbody>
      </table>
    </Page>
  );
}
