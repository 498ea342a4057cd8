// A host's images: what is there (size, age, which containers use it),
// pulls with each layer's progress while they run, and remove. Viewers
// see; operators pull, build, push, remove and clean up the host's disk;
// admins set registries' credentials.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, atLeast, get, Me } from '../api';
import { bytes, time } from '../format';
import { ErrorBox, errorText, Form, Page, useAsync } from '../ui';
import { Cleanup } from './Cleanup';
import { Registries } from './Registries';

interface Image { id: string; tags: string[]; digests: string[]; size: number; created: number; containers: string[] }
interface Layer { id: string; status: string; current: number; total: number; done: boolean }
interface Pull {
  id: number; kind?: 'pull' | 'push' | 'build'; log?: string; commit?: string; git?: string; image: string; state: 'running' | 'done' | 'failed'; status: string; error: string | null;
  layers: Layer[]; bytes_done: number; bytes_total: number; layers_done: number; started: number; finished: number | null;
}

const POLL_MS = 700;
const LOG_KEEP = 256 * 1024;
const wsURL = (path: string) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;

/** A build's log as the host pushes it (a WebSocket from the build's
 * start: its newest 64 KB, then each piece as the build prints it). */
function BuildLog({ server, p }: { server: string; p: Pull }) {
  const [text, setText] = useState('');
  const [state, setState] = useState('connecting');
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    let all = '';
    const ws = new WebSocket(wsURL(`/api/v1/servers/${encodeURIComponent(server)}/images/pulls/${p.id}/log/live`));
    ws.onopen = () => setState('live');
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data)) as { type: string; chunks?: [string, string][]; reason?: string };
      if (m.type === 'logs' && m.chunks) {
        all = (all + m.chunks.map((c) => c[1]).join('')).slice(-LOG_KEEP);
        setText(all);
      } else if (m.type === 'end') setState(m.reason ?? 'ended');
    };
    ws.onerror = () => setState('the live log could not be opened');
    return () => ws.close();
  }, [server, p.id]);
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [text]);
  return (
    <>
      <p class="small" data-log-state={state}>{state === 'live' ? 'live' : state}</p>
      <pre ref={pre} class="mono small build-log" aria-label={`log of ${p.image}`}>{text || p.log || ''}</pre>
    </>
  );
}

function PullRow({ p, server }: { p: Pull; server: string }) {
  const [open, setOpen] = useState(false);
  const pct = p.bytes_total ? Math.round((100 * p.bytes_done) / p.bytes_total) : p.state === 'done' ? 100 : 0;
  return (
    <>
      <tr data-pull={p.image} data-state={p.state} data-kind={p.kind ?? 'pull'}>
        <td class="mono small">{p.kind && p.kind !== 'pull' ? `${p.kind} ` : ''}{p.image}</td>
        <td class={p.state === 'failed' ? 'denied' : ''}>{p.state}</td>
        <td>
          <progress max={100} value={pct} aria-label={`${p.image}: ${pct}%`} />{' '}
          <span class="small">{bytes(p.bytes_done)} of {bytes(p.bytes_total)} · {p.layers_done}/{p.layers.length} layers</span>
        </td>
        <td class="small">
          {p.error ?? p.status}
          {p.commit && <span class="mono" title={`${p.git ?? ''} at ${p.commit}`}> · git {p.commit.slice(0, 12)}</span>}
        </td>
        <td><button type="button" class="link" aria-expanded={open} onClick={() => setOpen(!open)}>{p.kind === 'build' ? 'log' : 'layers'}</button></td>
      </tr>
      {open && p.kind === 'build' && (
        <tr class="detail"><td colSpan={5}><BuildLog server={server} p={p} /></td></tr>
      )}
      {open && p.kind !== 'build' && (
        <tr class="detail"><td colSpan={5}>
          <table class="table small" aria-label={`layers of ${p.image}`}>
            <tbody>{p.layers.map((l) => (
              <tr><td class="mono">{l.id}</td><td>{l.status}</td>
                <td><progress max={l.total || 1} value={l.total ? l.current : l.done ? 1 : 0} /> {l.total ? `${bytes(l.current)} of ${bytes(l.total)}` : ''}</td></tr>
            ))}</tbody>
          </table>
        </td></tr>
      )}
    </>
  );
}

export function ImagesPage({ me }: { me: Me }) {
  const servers = useAsync(() => get<any>('/api/v1/servers'), []);
  const names: string[] = (servers.data?.servers ?? []).map((s: any) => s.name);
  const [host, setHost] = useState('');
  const server = host || names[0] || '';
  const images = useAsync(() => (server ? get<Image[]>(`/api/v1/servers/${encodeURIComponent(server)}/images`) : Promise.resolve([])), [server]);
  const [pulls, setPulls] = useState<Pull[]>([]);
  const [error, setError] = useState('');
  const canAct = atLeast(me.role, 'operator');
  const running = pulls.some((p) => p.state === 'running');

  // the host's pulls: once, then every POLL_MS while one runs
  useEffect(() => {
    if (!server) return undefined;
    let stop = false;
    let timer: number | undefined;
    const tick = async () => {
      try {
        const list = await get<Pull[]>(`/api/v1/servers/${encodeURIComponent(server)}/images/pulls`);
        if (stop) return;
        setPulls(list);
        if (list.some((p) => p.state === 'running')) timer = window.setTimeout(tick, POLL_MS);
        else images.reload();
      } catch {
        /* the list's own error says why */
      }
    };
    tick();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [server, running ? 0 : pulls.length]);

  const push = async (ref: string) => {
    setError('');
    try {
      const p = await api<Pull>('POST', `/api/v1/servers/${encodeURIComponent(server)}/images/push`, { image: ref });
      setPulls((old) => [p, ...old.filter((o) => o.id !== p.id)]);
    } catch (e) {
      setError(errorText(e));
    }
  };
  const remove = async (img: Image) => {
    const ref = img.tags[0] ?? img.id;
    setError('');
    if (!confirm(`Remove ${ref} from ${server}?`)) return;
    try {
      await api('DELETE', `/api/v1/servers/${encodeURIComponent(server)}/images?image=${encodeURIComponent(ref)}`);
    } catch (e) {
      setError(errorText(e));
    }
    images.reload();
  };
  const rows = images.data ?? [];
  return (
    <Page title="Images">
      <label class="field" style={{ maxWidth: '20rem' }}><span>Host</span>
        <select name="server" value={server} onChange={(e) => { setHost((e.target as HTMLSelectElement).value); setPulls([]); }}>
          {names.map((n) => <option value={n}>{n}</option>)}
        </select>
      </label>
      {canAct && server && (
        <Form label="Pull an image" class="form" onSubmit={async (f) => {
          const p = await api<Pull>('POST', `/api/v1/servers/${encodeURIComponent(server)}/images/pull`, { image: String(f.get('image') ?? '').trim() });
          setPulls((old) => [p, ...old.filter((o) => o.id !== p.id)]);
        }}>
          <label class="field wide"><span>Image</span><input name="image" required placeholder="nvcr.io/nvidia/pytorch:24.05-py3" /></label>
          <button type="submit" class="primary">Pull</button>
        </Form>
      )}
      {canAct && server && (
        <Form label="Build an image" class="form" onSubmit={async (f) => {
          const tag = String(f.get('tag') ?? '').trim(), git = String(f.get('git') ?? '').trim();
          const ctx = f.get('context') as File | null;
          const url = `/api/v1/servers/${encodeURIComponent(server)}/images/build?tag=${encodeURIComponent(tag)}${git ? `&git=${encodeURIComponent(git)}` : ''}`;
          // the context is the body as it is (a tar); fetch streams the file
          const r = await fetch(url, { method: 'POST', body: git || !ctx?.size ? undefined : ctx, headers: { 'Content-Type': 'application/x-tar' } });
          const p = await r.json();
          if (!r.ok) throw new Error(p.error?.message ?? `build refused (${r.status})`);
          setPulls((old) => [p, ...old.filter((o) => o.id !== p.id)]);
        }}>
          <label class="field"><span>Tag</span><input name="tag" required placeholder="registry:5000/team/app:1" /></label>
          <label class="field wide"><span>Git URL (or a context below)</span><input name="git" placeholder="https://github.com/team/app.git#main" /></label>
          <label class="field"><span>Context (.tar with a Dockerfile)</span><input name="context" type="file" accept=".tar,application/x-tar" /></label>
          <button type="submit" class="primary">Build</button>
        </Form>
      )}
      {pulls.length > 0 && (
        <table class="table" aria-label="pulls">
          <thead><tr><th>Pull</th><th>State</th><th>Progress</th><th>Engine says</th><th><span class="sr-only">Layers</span></th></tr></thead>
          <tbody>{pulls.map((p) => <PullRow key={p.id} p={p} server={server} />)}</tbody>
        </table>
      )}
      <ErrorBox error={error || images.error || servers.error} />
      <table class="table" aria-label="images">
        <thead><tr><th>Tags</th><th>Id</th><th>Size</th><th>Created</th><th>Used by</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {rows.map((img) => (
            <tr data-image={img.tags[0] ?? img.id}>
              <td class="mono small">{img.tags.join(' ') || '<none>'}</td>
              <td class="mono small">{img.id.replace(/^sha256:/, '').slice(0, 12)}</td>
              <td>{bytes(img.size)}</td>
              <td>{time(img.created * 1000)}</td>
              <td>{img.containers.join(', ') || '–'}</td>
              <td class="row-actions">
                {canAct && img.tags.filter((t) => /^[^/]*[.:][^/]*\//.test(t)).slice(0, 1).map((t) => <button type="button" onClick={() => push(t)} title={`push ${t} to its registry`}>Push</button>)}
                {canAct && <button type="button" class="danger" onClick={() => remove(img)}>Remove</button>}
              </td>
            </tr>
          ))}
          {rows.length === 0 && !images.loading && !images.error && (
            <tr><td colSpan={6} class="muted">{server ? `No images on ${server}.` : 'No servers registered yet.'}</td></tr>
          )}
        </tbody>
      </table>
      {canAct && server && <Cleanup server={server} onDone={images.reload} />}
      {canAct && <Registries admin={me.role === 'admin'} />}
    </Page>
  );
}
