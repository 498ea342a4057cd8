// Containers across the fleet: mine (all, for viewers and up), a create
// dialog that shows the free GPUs of each host as the user picks, actions,
// and each container's usage now. Refreshed when the server says a
// container changed (live "containers" events).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, atLeast, fieldError, get, Me } from '../api';
import { bytes, time } from '../format';
import { useLive } from '../hooks';
import { live } from '../live';
import { ErrorBox, errorText, Field, Form, Link, Page, useAsync } from '../ui';

interface Gpu { server: string; uuid: string; index: number; model: string; fb_total_mib: number; holder: null | { container_id: number; name: string; owner: string } }
interface Port { container: number; host: number; proto: string }
interface Container {
  id: number; name: string; owner: string; server: string; image: string; state: string; detail: string;
  gpus: string[]; ports: Port[]; cpus: number; memory_bytes: number; created_ms: number; holding: boolean;
}

/** Free GPUs per host (and of which models), from the ledger. */
function freeByHost(gpus: Gpu[]) {
  const m = new Map<string, { total: number; free: number; models: Set<string> }>();
  for (const g of gpus) {
    const h = m.get(g.server) ?? { total: 0, free: 0, models: new Set<string>() };
    h.total++;
    if (!g.holder) {
      h.free++;
      h.models.add(g.model);
    }
    m.set(g.server, h);
  }
  return m;
}

/** "a b 'c d'" -> ["a","b","c d"]: enough quoting for a command line. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

function requestOf(f: FormData) {
  const body: Record<string, unknown> = { image: String(f.get('image') ?? '').trim() };
  const name = String(f.get('name') ?? '').trim();
  if (name) body.name = name;
  const n = parseInt(String(f.get('gpus') || '0'), 10);
  const model = String(f.get('model') ?? '');
  if (n > 0) body.gpus = model ? { count: n, model } : n;
  const host = String(f.get('host') ?? '');
  if (host) body.host = host;
  const cpus = String(f.get('cpus') ?? '').trim();
  if (cpus) body.cpus = Number(cpus);
  const memory = String(f.get('memory') ?? '').trim();
  if (memory) body.memory = memory;
  const ports = String(f.get('ports') ?? '').split(/[\s,]+/).filter(Boolean);
  if (ports.length) body.ports = ports.map((p) => (/^\d+$/.test(p) ? parseInt(p, 10) : p));
  const env: Record<string, string> = {};
  for (const line of String(f.get('env') ?? '').split('\n').map((l) => l.trim()).filter(Boolean)) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw fieldError('env', `"${line}" is not NAME=value`);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  if (Object.keys(env).length) body.env = env;
  const cmd = splitArgs(String(f.get('command') ?? ''));
  if (cmd.length) body.command = cmd;
  body.workspace = f.get('workspace') === 'on';
  if (f.get('tty') === 'on') body.tty = true;
  return body;
}

interface Figures { containers: number; gpus: number; cpus: number; memory_bytes: number }

/** The caller's limits and use, above the create form. */
function QuotaLine() {
  const q = useAsync(() => get<{ limits: Figures | null; use: Figures; own_limits: boolean }>('/api/v1/quota'), []);
  if (!q.data) return null;
  const { limits: l, use: u } = q.data;
  if (!l) return <p class="muted small" data-testid="quota">No limits (admin). In use: {u.containers} containers, {u.gpus} GPUs.</p>;
  return (
    <p class="muted small" data-testid="quota">
      Your limits{q.data.own_limits ? ' (set for you)' : ''}: {u.containers} of {l.containers} containers, {u.gpus} of {l.gpus} GPUs,
      {' '}{u.cpus} of {l.cpus} CPUs, {bytes(u.memory_bytes)} of {bytes(l.memory_bytes)} in use.
    </p>
  );
}

function CreateDialog({ gpus, onDone }: { gpus: Gpu[]; onDone: () => void }) {
  const [host, setHost] = useState('');
  const [want, setWant] = useState(0);
  const [model, setModel] = useState('');
  const hosts = useMemo(() => freeByHost(gpus), [gpus]);
  const fits = (h: string) => {
    const free = gpus.filter((g) => g.server === h && !g.holder && (!model || g.model.includes(model))).length;
    return free >= want;
  };
  const models = [...new Set(gpus.map((g) => g.model))];
  return (
    <Form label="New container" class="form create" onSubmit={async (f) => {
      await api('POST', '/api/v1/containers', requestOf(f));
      onDone();
    }}>
      <QuotaLine />
      <Field label="Image" name="image" required placeholder="nvcr.io/nvidia/pytorch:24.05-py3" />
      <Field label="Name (optional)" name="name" placeholder="train-1" />
      <label class="field"><span>GPUs</span>
        <input name="gpus" type="number" min={0} max={16} value={want} onInput={(e) => setWant(parseInt((e.target as HTMLInputElement).value || '0', 10))} />
      </label>
      <label class="field"><span>GPU model</span>
        <select name="model" value={model} onChange={(e) => setModel((e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          {models.map((m) => <option value={m}>{m}</option>)}
        </select>
      </label>
      <label class="field"><span>Host</span>
        <select name="host" value={host} onChange={(e) => setHost((e.target as HTMLSelectElement).value)}>
          <option value="">automatic</option>
          {[...hosts.keys()].map((h) => <option value={h} disabled={!fits(h)}>{h}</option>)}
        </select>
      </label>
      <Field label="CPUs" name="cpus" placeholder="default" />
      <Field label="Memory" name="memory" placeholder="e.g. 16g" />
      <Field label="Ports" name="ports" placeholder="8888, 6006/tcp" />
      <label class="field wide"><span>Command (optional)</span><input name="command" placeholder="python train.py --epochs 3" /></label>
      <label class="field wide"><span>Environment, NAME=value per line</span><textarea name="env" rows={2} /></label>
      <label class="check"><input type="checkbox" name="workspace" checked /> my workspace at /workspace</label>
      <label class="check"><input type="checkbox" name="tty" /> a TTY (for programs that want one; its logs are one stream)</label>
      <table class="table free-gpus" aria-label="free GPUs per host">
        <thead><tr><th>Host</th><th>Free GPUs</th><th>Models free</th></tr></thead>
        <tbody>
          {[...hosts.entries()].map(([h, v]) => (
            <tr data-host={h} class={fits(h) ? '' : 'denied'}><td>{h}</td><td>{v.free} of {v.total}</td><td>{[...v.models].join(', ') || '–'}</td></tr>
          ))}
          {hosts.size === 0 && <tr><td colSpan={3} class="muted">No GPU hosts seen yet.</td></tr>}
        </tbody>
      </table>
      <button type="submit" class="primary">Create</button>
    </Form>
  );
}

function Usage({ id }: { id: number }) {
  const s = useAsync(() => get<any>(`/api/v1/containers/${id}/stats`), [id]);
  if (s.error) return <span class="muted">{s.error}</span>;
  if (!s.data) return <span class="muted">…</span>;
  return <span>CPU {s.data.cpu_seconds.toFixed(1)} s · memory {bytes(s.data.memory_bytes)} of {bytes(s.data.memory_limit_bytes)} · {s.data.pids} processes</span>;
}

export function ContainersPage({ me }: { me: Me }) {
  useLive();
  const list = useAsync(() => get<{ containers: Container[] }>('/api/v1/containers'), []);
  const gpus = useAsync(() => get<{ gpus: Gpu[]; conflicts: any[] }>('/api/v1/gpus'), []);
  const servers = useAsync(() => get<any>('/api/v1/servers'), []);
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  const [error, setError] = useState('');
  const seq = live.containersSeq;
  useEffect(() => {
    if (seq) {
      list.reload();
      gpus.reload();
    }
  }, [seq]);
  const address = (server: string) => servers.data?.servers?.find((s: any) => s.name === server)?.address ?? server;
  const canCreate = atLeast(me.role, 'user');
  const canAct = (c: Container) => atLeast(me.role, 'operator') || (me.role === 'user' && c.owner === me.username);
  const act = async (c: Container, action: string) => {
    setError('');
    try {
      if (action === 'remove') {
        if (!confirm(`Remove ${c.name}? Its GPUs and ports are freed; its workspace stays.`)) return;
        await api('DELETE', `/api/v1/containers/${c.id}`);
      } else {
        await api('POST', `/api/v1/containers/${c.id}/${action}`);
      }
    } catch (e) {
      setError(errorText(e));
    }
    list.reload();
    gpus.reload();
  };
  const rows = list.data?.containers ?? [];
  return (
    <Page title={me.role === 'user' ? 'My containers' : 'Containers'}
      actions={canCreate && <button type="button" class="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>New container</button>}>
      {creating && <CreateDialog gpus={gpus.data?.gpus ?? []} onDone={() => { setCreating(false); list.reload(); gpus.reload(); }} />}
      <ErrorBox error={error || list.error} />
      {(gpus.data?.conflicts?.length ?? 0) > 0 && (
        <ul class="error" aria-label="conflicts">{gpus.data!.conflicts.map((c: any) => <li>{c.server}: {c.message}</li>)}</ul>
      )}
      <table class="table" aria-label="containers">
        <thead><tr><th>Name</th><th>Owner</th><th>Host</th><th>State</th><th>GPUs</th><th>Ports</th><th>CPU / memory</th><th>Image</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {rows.map((c) => (
            <>
              <tr data-container={c.name} class={c.state === 'gone' || c.state === 'failed' ? 'denied' : ''}>
                <td><button type="button" class="link" aria-expanded={open === c.id} onClick={() => setOpen(open === c.id ? null : c.id)}>{c.name}</button></td>
                <td>{c.owner}</td>
                <td>{c.server}</td>
                <td title={c.detail}>{c.state}{c.detail && <span class="muted small"> ({c.detail})</span>}</td>
                <td title={c.gpus.join('\n')}>{c.gpus.length || '–'}</td>
                <td>{c.ports.map((p) => (
                  p.proto === 'tcp' ? <a href={`http://${address(c.server)}:${p.host}/`} target="_blank" rel="noopener">{p.host}→{p.container}</a>
                    : <span>{p.host}→{p.container}/udp</span>)).reduce((a: any[], x) => (a.length ? [...a, ' ', x] : [x]), [])}</td>
                <td>{c.cpus} CPU · {bytes(c.memory_bytes)}</td>
                <td class="mono small">{c.image}</td>
                <td class="row-actions">{canAct(c) && (
                  <>
                    {c.state !== 'running' && c.state !== 'gone' && <button type="button" onClick={() => act(c, 'start')}>Start</button>}
                    {c.state === 'running' && <button type="button" onClick={() => act(c, 'stop')}>Stop</button>}
                    {c.state === 'running' && <button type="button" onClick={() => act(c, 'restart')}>Restart</button>}
                    <button type="button" onClick={() => act(c, 'recreate')}>Recreate</button>
                    <button type="button" class="danger" onClick={() => act(c, 'remove')}>Remove</button>
                  </>
                )}</td>
              </tr>
              {open === c.id && (
                <tr class="detail"><td colSpan={9}>
                  <p>Created {time(c.created_ms)} · {c.holding ? 'holds its GPUs and ports' : 'holds nothing (stopped)'}</p>
                  {c.gpus.length > 0 && <p class="mono small">{c.gpus.join(' ')}</p>}
                  {c.state === 'running' && <p><Usage id={c.id} /></p>}
                  <p><Link href={`/containers/${c.id}`}>Charts of its usage →</Link></p>
                </td></tr>
              )}
            </>
          ))}
          {rows.length === 0 && !list.loading && <tr><td colSpan={9} class="muted">No containers{canCreate ? ': make one with New container' : ''}.</td></tr>}
        </tbody>
      </table>
    </Page>
  );
}
