// Apps from git and the marketplace: each app with its health light
// (STARTING amber, RUNNING green, STOPPED grey, FAILED red with its log
// tail), the clone's progress while it installs, lifecycle actions and a
// link to the running app. The list is read once; every change after it
// comes pushed over the live socket (no polling), so a page of 200 apps
// costs nothing while nothing changes.
import { useMemo, useState } from 'preact/hooks';
import { api, atLeast, fieldError, get, Me } from '../api';
import { bytes, time } from '../format';
import { useLive } from '../hooks';
import { live } from '../live';
import { ErrorBox, errorText, Field, Form, Link, Page, useAsync } from '../ui';

export interface App {
  name: string; owner: string; server: string; repository: string; ref: string; commit: string;
  start_command: string; port: number; health_path: string; image: string; template: string;
  phase: string; desired: string; health: 'STARTING' | 'RUNNING' | 'STOPPED' | 'FAILED';
  health_since_ms: number; detail: string; log_tail: string; busy: boolean; url: string | null;
  host_port: number; container_id: number; private: boolean; host_key?: string; gpus: unknown; progress: null | {
    step: string; objects_total?: number; objects_received?: number; bytes_received?: number;
    files_total?: number; files_done?: number; line?: string; commit?: string;
  };
}

interface Var { name: string; default: string; description: string; required: boolean; options?: string[] }
export interface Template {
  slug: string; title: string; summary: string; repository: string; ref: string; port: number;
  health_path: string; start_command: string; image: string; gpus: { count: number; min_memory_mib: number };
  env: Var[]; logo: string; categories: string[]; promoted_from: string; builtin: boolean;
}

const LIGHT: Record<string, string> = { STARTING: 'starting', RUNNING: 'running', STOPPED: 'stopped', FAILED: 'failed' };

/** The light: a coloured dot and its word (the word for those who cannot
 * tell the colours apart). */
function Light({ app }: { app: App }) {
  const h = app.busy ? 'STARTING' : app.health;
  const word = app.busy ? (app.phase === 'installing' ? 'INSTALLING' : app.phase.toUpperCase()) : h;
  return <span class={`light ${LIGHT[h]}`} data-health={h} title={app.detail || word}>{word}</span>;
}

/** A clone's progress: objects and bytes received, then the checkout. */
function Progress({ p }: { p: NonNullable<App['progress']> }) {
  if (p.step === 'queued') return <span class="muted small" data-testid="progress">queued…</span>;
  if (p.step === 'container') return <span class="small" data-testid="progress">making its container…</span>;
  const total = p.objects_total ?? 0, got = p.objects_received ?? 0;
  const pct = p.files_total ? 100 : total ? Math.round((got * 100) / total) : 0;
  return (
    <span class="small progress-line" data-testid="progress">
      <progress max={100} value={pct} aria-label={`${p.step} ${pct}%`} />
      {' '}{p.step === 'fetch' ? 'fetching' : 'cloning'}: {got} of {total} objects, {bytes(p.bytes_received ?? 0)}
      {p.files_total ? `, ${p.files_done} of ${p.files_total} files checked out` : ''}
    </span>
  );
}

/** "NAME=value" lines into an object; a bad line names the field. */
function envOf(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw fieldError('env', `"${line}" is not NAME=value`);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** repository_auth from a form's auth_* fields: a deploy key for ssh
 * (ssh:// or git@host:path), a user and token for https; null for none. */
function authOf(f: FormData): Record<string, string> | null {
  const s = (k: string) => String(f.get(k) ?? '').trim();
  const key = String(f.get('auth_key') ?? '').replace(/\r/g, '').trim();
  if (key) return { ssh_key: `${key}\n`, username: s('auth_user'), host_key: s('auth_host_key') };
  if (s('auth_user')) return { username: s('auth_user'), password: String(f.get('auth_password') ?? '') };
  return null;
}

function AuthFields() {
  return (
    <>
      <Field label="User (a private https repository)" name="auth_user" autocomplete="off" placeholder="none: a public one" />
      <Field label="Token or password" name="auth_password" type="password" autocomplete="new-password" />
      <label class="field wide"><span>Deploy key (a private ssh repository: its private key, never shown again)</span>
        <textarea name="auth_key" class="mono" rows={2} autocomplete="off" spellcheck={false} placeholder="-----BEGIN OPENSSH PRIVATE KEY-----" /></label>
      <Field label="Its server's host key (optional)" name="auth_host_key" autocomplete="off" placeholder="SHA256:… (else pinned on first contact)" />
    </>
  );
}

/** New credentials for a private app (a rotated token or deploy key): an
 * update that uses them, and keeps them if it succeeds. */
function NewCredentials({ app }: { app: App }) {
  const [said, setSaid] = useState('');
  return (
    <Form label={`New credentials for ${app.name}`} class="form create" onSubmit={async (f) => {
      const auth = authOf(f);
      if (!auth) throw fieldError('auth_user', 'a user and token, or a deploy key');
      await api('POST', `/api/v1/apps/${app.name}/update`, { repository_auth: auth });
      setSaid('Updating with them: kept if the update succeeds.');
    }}>
      <AuthFields />
      <button type="submit">Update with these</button>
      {said && <p role="status">{said}</p>}
    </Form>
  );
}

function InstallDialog({ tpl, onDone }: { tpl: Template | null; onDone: () => void }) {
  const servers = useAsync(() => get<any>('/api/v1/servers'), []);
  return (
    <Form label={tpl ? `Install ${tpl.title}` : 'Install an app'} class="form create install" onSubmit={async (f) => {
      const s = (k: string) => String(f.get(k) ?? '').trim();
      const body: Record<string, unknown> = { name: s('name') };
      if (tpl) body.template = tpl.slug;
      for (const k of ['repository', 'ref', 'start_command', 'health_path', 'image', 'host']) if (s(k)) body[k] = s(k);
      if (s('port')) body.port = parseInt(s('port'), 10);
      const auth = authOf(f);
      if (auth) body.repository_auth = auth;
      const n = parseInt(s('gpus') || '0', 10);
      if (n > 0 || (tpl && tpl.gpus.count > 0)) body.gpus = n;
      const env = envOf(s('env'));
      for (const v of tpl?.env ?? []) {
        const x = s(`var_${v.name}`);
        if (x || v.required) env[v.name] = x;
      }
      if (Object.keys(env).length) body.env = env;
      await api('POST', '/api/v1/apps', body);
      onDone();
    }}>
      {tpl && <p class="muted small">{tpl.summary}</p>}
      <Field label="Name (a DNS label)" name="name" required placeholder="my-app" />
      <Field label="Repository (git URL)" name="repository" value={tpl?.repository} placeholder="https://github.com/you/app" />
      <Field label="Branch, tag or commit" name="ref" value={tpl?.ref} placeholder="the remote's default" />
      <AuthFields />
      <label class="field wide"><span>Start command (in /app)</span><input name="start_command" defaultValue={tpl?.start_command} placeholder="python app.py --port 7860" /></label>
      <Field label="Port" name="port" type="number" value={tpl ? String(tpl.port) : ''} min={1} max={65535} />
      <Field label="Health path" name="health_path" value={tpl?.health_path} placeholder="/ (any answer)" />
      <Field label="Image" name="image" value={tpl?.image} placeholder="the curated default" />
      <Field label="GPUs" name="gpus" type="number" value={String(tpl?.gpus.count ?? 0)} min={0} max={16} />
      <label class="field"><span>Host</span>
        <select name="host">
          <option value="">automatic</option>
          {(servers.data?.servers ?? []).map((s: any) => <option value={s.name}>{s.name}</option>)}
        </select>
      </label>
      {(tpl?.env ?? []).map((v) => (
        <label class="field" data-var={v.name}><span>{v.name}{v.required ? ' (required)' : ''}</span>
          {v.options ? (
            <select name={`var_${v.name}`} defaultValue={v.default}>{v.options.map((o) => <option value={o}>{o}</option>)}</select>
          ) : <input name={`var_${v.name}`} defaultValue={v.default} required={v.required} title={v.description} placeholder={v.description} />}
        </label>
      ))}
      <label class="field wide"><span>More environment, NAME=value per line</span><textarea name="env" rows={2} /></label>
      <button type="submit" class="primary">Install</button>
    </Form>
  );
}

function Marketplace({ me, onInstall }: { me: Me; onInstall: (t: Template) => void }) {
  const list = useAsync(() => get<{ templates: Template[] }>('/api/v1/templates'), []);
  const [error, setError] = useState('');
  const canEdit = atLeast(me.role, 'operator');
  const importFile = async (file: File) => {
    setError('');
    try {
      const r = await api('POST', '/api/v1/templates/import', JSON.parse(await file.text()));
      setError(r.skipped.length ? `Imported ${r.imported.length}; skipped: ${r.skipped.map((s: any) => `${s.title} (${s.why})`).join('; ')}` : '');
      list.reload();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const remove = async (t: Template) => {
    if (!confirm(`Delete the template ${t.title}? Apps installed from it stay.`)) return;
    try {
      await api('DELETE', `/api/v1/templates/${t.slug}`);
    } catch (e) {
      setError(errorText(e));
    }
    list.reload();
  };
  return (
    <section aria-label="marketplace">
      <div class="row-actions">
        <a href="/api/v1/templates/export" download="gpufleet-templates.json">Export templates</a>
        {canEdit && <label class="file-pick">Import templates (gpufleet or Portainer v2 JSON)
          <input type="file" accept=".json,application/json" onChange={(e) => {
            const f = (e.target as HTMLInputElement).files?.[0];
            if (f) importFile(f);
          }} /></label>}
      </div>
      <ErrorBox error={error || list.error} />
      <ul class="cards templates">
        {(list.data?.templates ?? []).map((t) => (
          <li class="card" data-template={t.slug}>
            <header>{t.logo && <img src={t.logo} alt="" width={28} height={28} loading="lazy" />}<h3>{t.title}</h3></header>
            <p class="small">{t.summary}</p>
            <p class="muted small">
              port {t.port}{t.gpus.count ? ` · ${t.gpus.count} GPU${t.gpus.count > 1 ? 's' : ''}` : ''}
              {t.gpus.min_memory_mib ? ` of ${bytes(t.gpus.min_memory_mib * 1048576)}+` : ''}
              {t.categories.length ? ` · ${t.categories.join(', ')}` : ''}
              {t.promoted_from ? ` · from ${t.promoted_from}` : ''}
            </p>
            <div class="row-actions">
              {atLeast(me.role, 'user') && <button type="button" class="primary" onClick={() => onInstall(t)}>Install</button>}
              {canEdit && <button type="button" class="danger" onClick={() => remove(t)}>Delete</button>}
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The list as read, with what the live socket said since. */
function useApps() {
  // the live updates counted when the read began: the ones after it win
  const list = useAsync(async () => {
    const at = live.appsSeq;
    const r = await get<{ apps: App[] }>('/api/v1/apps');
    return { at, apps: new Map(r.apps.map((a) => [a.name, a])) };
  }, []);
  useLive();
  const base = list.data;
  const rows = new Map(base?.apps ?? []);
  for (const [name, u] of live.appUpdates) {
    if (!base || u.seq <= base.at) continue;
    if (u.app) rows.set(name, u.app);
    else rows.delete(name);
  }
  return { list, rows: [...rows.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

export function AppsPage({ me }: { me: Me }) {
  const { list, rows } = useApps();
  const [tab, setTab] = useState<'apps' | 'market'>('apps');
  const [installing, setInstalling] = useState<Template | null | undefined>(undefined);
  const [error, setError] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const canInstall = atLeast(me.role, 'user');
  const canAct = (a: App) => atLeast(me.role, 'operator') || (me.role === 'user' && a.owner === me.username);
  const counts = useMemo(() => {
    const c: Record<string, number> = { STARTING: 0, RUNNING: 0, STOPPED: 0, FAILED: 0 };
    for (const a of rows) c[a.busy ? 'STARTING' : a.health]++;
    return c;
  }, [rows]);
  const act = async (a: App, action: string) => {
    setError('');
    try {
      if (action === 'deinstall') {
        const keep = confirm(`Deinstall ${a.name}: its container goes, its GPUs and ports are freed.\n\nOK keeps its folder on ${a.server}; Cancel asks to remove it.`);
        if (!keep && !confirm(`Remove ${a.name}'s folder (its clone and everything the app wrote there) too?`)) return;
        await api('DELETE', `/api/v1/apps/${a.name}${keep ? '?keep_folder=1' : ''}`);
      } else if (action === 'promote') {
        const title = prompt('Title of the new template', a.name);
        if (!title) return;
        const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 63) || a.name;
        await api('POST', `/api/v1/apps/${a.name}/promote`, { slug, title });
      } else if (action === 'reinstall' || action === 'update') {
        const ref = prompt(`${action === 'update' ? 'Update' : 'Reinstall'} ${a.name} at which branch, tag or commit?`, a.ref);
        if (ref === null) return;
        await api('POST', `/api/v1/apps/${a.name}/${action}`, { ref });
      } else {
        await api('POST', `/api/v1/apps/${a.name}/${action}`);
      }
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Page title={me.role === 'user' ? 'My apps' : 'Apps'}
      actions={canInstall && <button type="button" class="primary" onClick={() => setInstalling(installing === undefined ? null : undefined)} aria-expanded={installing !== undefined}>Install app</button>}>
      <div class="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={tab === 'apps'} onClick={() => setTab('apps')}>Apps ({rows.length})</button>
        <button type="button" role="tab" aria-selected={tab === 'market'} onClick={() => setTab('market')}>Marketplace</button>
      </div>
      {installing !== undefined && <InstallDialog key={installing?.slug ?? ''} tpl={installing} onDone={() => { setInstalling(undefined); setTab('apps'); }} />}
      <ErrorBox error={error || list.error} />
      {tab === 'market' ? <Marketplace me={me} onInstall={(t) => { setInstalling(t); window.scrollTo(0, 0); }} /> : (
        <>
          {canInstall && <label class="file-pick small">Import an app (an export's tar)
            <input type="file" accept=".tar,application/x-tar" onChange={async (e) => {
              const input = e.target as HTMLInputElement;
              const f = input.files?.[0];
              if (!f) return;
              const name = prompt('Its name here (empty: the one it had)', '') ?? '';
              setError('');
              try {
                const r = await fetch(`/api/v1/apps/import${name ? `?name=${encodeURIComponent(name)}` : ''}`,
                  { method: 'POST', body: f, credentials: 'same-origin', headers: { 'Content-Type': 'application/x-tar' } });
                if (!r.ok) setError((await r.json().catch(() => null))?.error?.message ?? `HTTP ${r.status}`);
              } catch (err) {
                setError(errorText(err));
              }
              input.value = '';
            }} /></label>}
          <p class="muted small" data-testid="app-counts">
            {Object.entries(counts).map(([k, n]) => <span class={`light ${LIGHT[k]}`}>{n} {k.toLowerCase()}</span>)}
          </p>
          <table class="table apps" aria-label="apps">
            <thead><tr><th>Health</th><th>Name</th><th>Owner</th><th>Host</th><th>Commit</th><th>Since</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {rows.map((a) => (
                <>
                  <tr data-app={a.name}>
                    <td><Light app={a} /></td>
                    <td>
                      <button type="button" class="link" aria-expanded={open === a.name} onClick={() => setOpen(open === a.name ? null : a.name)}>{a.name}</button>
                      {a.url && a.health === 'RUNNING' && <> · <a href={a.url} target="_blank" rel="noopener" data-testid="app-link">open</a></>}
                      {a.progress && <div><Progress p={a.progress} /></div>}
                      {!a.busy && a.health === 'FAILED' && <div class="error small" data-testid="why">{a.detail}</div>}
                    </td>
                    <td>{a.owner}</td>
                    <td>{a.server}{a.host_port ? `:${a.host_port}` : ''}</td>
                    <td class="mono small" title={a.commit}>{a.commit ? a.commit.slice(0, 12) : '–'}{a.ref ? ` (${a.ref})` : ''}</td>
                    <td class="small">{time(a.health_since_ms)}</td>
                    <td class="row-actions">{canAct(a) && !a.busy && (
                      <>
                        {a.phase === 'ready' && a.desired === 'stopped' && <button type="button" onClick={() => act(a, 'start')}>Start</button>}
                        {a.phase === 'ready' && a.desired !== 'stopped' && <button type="button" onClick={() => act(a, 'stop')}>Stop</button>}
                        {a.phase === 'ready' && <button type="button" onClick={() => act(a, 'restart')}>Restart</button>}
                        {a.repository && a.phase === 'ready' && <button type="button" onClick={() => act(a, 'update')}>Update</button>}
                        <button type="button" onClick={() => act(a, 'reinstall')}>Reinstall</button>
                        {atLeast(me.role, 'operator') && a.health === 'RUNNING' && <button type="button" onClick={() => act(a, 'promote')}>Make template</button>}
                        <button type="button" class="danger" onClick={() => act(a, 'deinstall')}>Deinstall</button>
                      </>
                    )}</td>
                  </tr>
                  {(open === a.name || (a.health === 'FAILED' && a.log_tail && open === a.name)) && (
                    <tr class="detail"><td colSpan={7}>
                      <p class="mono small">{a.repository || '(no repository: the image alone)'}{a.private ? ' (private)' : ''}{a.host_key ? ` · host key ${a.host_key}` : ''} · {a.image} · port {a.port}{a.health_path ? ` ${a.health_path}` : ''}</p>
                      <p class="mono small">{a.start_command || '(the image\'s own command)'}</p>
                      {a.detail && <p class={a.health === 'FAILED' ? 'error' : 'muted'}>{a.detail}</p>}
                      {a.log_tail && <pre class="log-tail" aria-label="last log lines">{a.log_tail}</pre>}
                      {a.private && canAct(a) && a.phase === 'ready' && !a.busy && <NewCredentials app={a} />}
                      {a.container_id > 0 && <p><Link href={`/containers/${a.container_id}`}>Its container: logs, terminal, files, and charts of its GPU, CPU and memory use →</Link></p>}
                      {a.container_id > 0 && canAct(a) && <p><a href={`/api/v1/apps/${a.name}/export`} download={`${a.name}.app.tar`}>Export (its record and folder, a tar)</a></p>}
                    </td></tr>
                  )}
                </>
              ))}
              {rows.length === 0 && !list.loading && <tr><td colSpan={7} class="muted">No apps{canInstall ? ': install one from the Marketplace, or any git repository with Install app' : ''}.</td></tr>}
            </tbody>
          </table>
        </>
      )}
    </Page>
  );
}
