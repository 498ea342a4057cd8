// Users (admin), and every user's own API tokens and sessions.
import { useState } from 'preact/hooks';
import { api, get, Me } from '../api';
import { pendingChanged } from '../hooks';
import { ago, bytes, time } from '../format';
import { EmptyRow, ErrorBox, errorText, Field, Form, Page, passwordHint, Secret, Select, useAsync } from '../ui';

const ROLES = ['viewer', 'user', 'operator', 'admin'];

/** A limit as the quota form shows it: blank is the setting's default. */
const limitText = (v: number | null | undefined, memory = false) => (v == null ? '' : memory ? bytes(v) : String(v));

/** An admin's tools for one user, in a row under theirs: a new password
 * (they change it at their next sign-in unless unticked), and their
 * container quota (blank fields take the defaults from the settings). */
function UserTools({ u, me, tool, quotas, onDone }: { u: any; me: Me; tool: 'password' | 'quota'; quotas: any; onDone: () => void }) {
  if (tool === 'password')
    return (
      <Form label={`New password for ${u.username}`} class="form inline" onSubmit={async (f) => {
        await api('PATCH', `/api/v1/users/${u.id}`, { password: f.get('password'), must_change_password: f.get('must') === 'on' });
        onDone();
      }}>
        <Field label="New password" name="password" type="password" required autocomplete="new-password" hint={passwordHint(me.password_rules)} />
        <label class="check"><input type="checkbox" name="must" checked /> must change it at the next sign-in</label>
        <button type="submit" class="primary">Set password</button>
        <button type="button" onClick={onDone}>Cancel</button>
      </Form>
    );
  const d = quotas?.defaults ?? {}, q = (quotas?.users ?? []).find((x: any) => x.user === u.username) ?? {};
  const def = (v: number | null | undefined, memory = false) => `default: ${v == null ? 'no limit' : limitText(v, memory)}`;
  const num = (f: FormData, k: string) => {
    const t = String(f.get(k) ?? '').trim();
    return t === '' ? null : k === 'memory' ? t : Number(t);
  };
  return (
    <Form label={`Quota of ${u.username}`} class="form inline" onSubmit={async (f) => {
      await api('PUT', `/api/v1/quotas/${encodeURIComponent(u.username)}`,
        { containers: num(f, 'containers'), gpus: num(f, 'gpus'), cpus: num(f, 'cpus'), memory: num(f, 'memory') });
      onDone();
    }}>
      <Field label="Containers" name="containers" value={limitText(q.containers)} placeholder={def(d.containers)} />
      <Field label="GPUs" name="gpus" value={limitText(q.gpus)} placeholder={def(d.gpus)} />
      <Field label="CPUs" name="cpus" value={limitText(q.cpus)} placeholder={def(d.cpus)} />
      <Field label="Memory" name="memory" value={q.memory_bytes == null ? '' : `${Math.round(q.memory_bytes / 1048576)}m`} placeholder={def(d.memory_bytes, true)} />
      <button type="submit" class="primary">Save quota</button>
      <button type="button" onClick={async () => {
        await api('DELETE', `/api/v1/quotas/${encodeURIComponent(u.username)}`);
        onDone();
      }}>Back to the defaults</button>
      <button type="button" onClick={onDone}>Cancel</button>
    </Form>
  );
}

export function UsersPage({ me }: { me: Me }) {
  const users = useAsync(() => get<any>('/api/v1/users'), []);
  const quotas = useAsync(() => get<any>('/api/v1/quotas'), []);
  const [open, setOpen] = useState<{ id: number; tool: 'password' | 'quota' } | null>(null);
  const [adding, setAdding] = useState(false);
  const isOpen = (id: number, tool: string) => !!open && open.id === id && open.tool === tool;
  const [error, setError] = useState('');
  const act = async (fn: () => Promise<unknown>) => {
    setError('');
    try {
      await fn();
      users.reload();
      pendingChanged.dispatchEvent(new Event('change'));
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Page title="Users" actions={<button type="button" class="primary" onClick={() => setAdding(!adding)} aria-expanded={adding}>Add user</button>}>
      {adding && (
        <Form label="Add user" class="form inline" onSubmit={async (f) => {
          await api('POST', '/api/v1/users', { username: f.get('username'), password: f.get('password'), role: f.get('role'), must_change_password: f.get('must') === 'on' });
          setAdding(false);
          users.reload();
        }}>
          <Field label="User name" name="username" required autocomplete="off" />
          <Field label="First password" name="password" type="password" required autocomplete="new-password" hint={passwordHint(me.password_rules)} />
          <Select label="Role" name="role" options={ROLES} value="viewer" />
          <label class="check"><input type="checkbox" name="must" checked /> must change it at first sign-in</label>
          <button type="submit" class="primary">Add</button>
        </Form>
      )}
      <ErrorBox error={error || users.error} />
      <table class="table" aria-label="users">
        <thead><tr><th>User</th><th>Role</th><th>State</th><th>Last sign-in</th><th>Created</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {(users.data?.users ?? []).flatMap((u: any) => [
            <tr data-user={u.username}>
              <td>{u.username}{u.source !== 'local' && <span class="muted small"> ({u.source})</span>}</td>
              <td>
                <select aria-label={`role of ${u.username}`} value={u.role} disabled={u.id === me.id}
                  onChange={(e) => act(() => api('PATCH', `/api/v1/users/${u.id}`, { role: (e.target as HTMLSelectElement).value }))}>
                  {ROLES.map((r) => <option value={r}>{r}</option>)}
                </select>
              </td>
              <td>{u.pending ? <b class="pending">waiting for approval</b> : u.disabled ? 'disabled' : u.must_change_password ? 'must change password' : 'active'}</td>
              <td>{ago(u.last_login_ms)}</td>
              <td>{time(u.created_ms)}</td>
              <td class="row-actions">
                <button type="button" aria-expanded={isOpen(u.id, 'quota')} onClick={() => setOpen(isOpen(u.id, 'quota') ? null : { id: u.id, tool: 'quota' })}>Quota</button>
                {u.id !== me.id && u.source === 'local' && (
                  <button type="button" aria-expanded={isOpen(u.id, 'password')} onClick={() => setOpen(isOpen(u.id, 'password') ? null : { id: u.id, tool: 'password' })}>Reset password</button>
                )}
                {u.pending && (
                  <>
                    <button type="button" class="primary" onClick={() => act(() => api('PATCH', `/api/v1/users/${u.id}`, { disabled: false }))}>Approve</button>
                    <button type="button" class="danger" onClick={() => confirm(`Turn down ${u.username}'s sign-up? The account is deleted.`) && act(() => api('DELETE', `/api/v1/users/${u.id}`))}>Turn down</button>
                  </>
                )}
                {u.id !== me.id && !u.pending && (
                  <>
                    <button type="button" onClick={() => act(() => api('PATCH', `/api/v1/users/${u.id}`, { disabled: !u.disabled }))}>{u.disabled ? 'Enable' : 'Disable'}</button>
                    <button type="button" class="danger" onClick={() => confirm(`Delete user ${u.username}?`) && act(() => api('DELETE', `/api/v1/users/${u.id}`))}>Delete</button>
                  </>
                )}
              </td>
            </tr>,
            open && open.id === u.id && (
              <tr class="detail"><td colSpan={6}>
                <UserTools u={u} me={me} tool={open.tool} quotas={quotas.data} onDone={() => {
                  setOpen(null);
                  users.reload();
                  quotas.reload();
                }} />
              </td></tr>
            ),
          ])}
        </tbody>
      </table>
    </Page>
  );
}

export function TokensPage({ me }: { me: Me }) {
  const tokens = useAsync(() => get<any>('/api/v1/tokens'), []);
  const sessions = useAsync(() => get<any>('/api/v1/auth/sessions'), []);
  const [secret, setSecret] = useState('');
  const [error, setError] = useState('');
  const roles = ROLES.slice(0, ROLES.indexOf(me.role) + 1);
  return (
    <Page title="API tokens and sessions">
      {secret && <Secret label="New API token" value={secret} onDone={() => setSecret('')} />}
      <Form label="Create API token" class="form inline" onSubmit={async (f) => {
        const r = await api<any>('POST', '/api/v1/tokens', { name: f.get('name'), role: f.get('role'), expires_in: `${f.get('days')}d` });
        setSecret(r.token);
        tokens.reload();
      }}>
        <Field label="Name" name="name" required placeholder="grafana" />
        <Select label="Role" name="role" options={roles} value="viewer" />
        <Field label="Expires in (days)" name="days" type="number" value="90" min={1} max={366} />
        <button type="submit" class="primary">Create token</button>
      </Form>
      <ErrorBox error={error || tokens.error} />
      <table class="table" aria-label="API tokens">
        <thead><tr><th>Name</th><th>Owner</th><th>Role</th><th>Prefix</th><th>Last used</th><th>Expires</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {(tokens.data?.tokens ?? []).map((t: any) => (
            <tr><td>{t.name}</td><td>{t.username}</td><td>{t.role}</td><td class="mono">{t.prefix}…</td><td>{ago(t.last_used_ms)}</td><td>{time(t.expires_ms)}</td>
              <td><button type="button" class="danger" onClick={async () => {
                try {
                  await api('DELETE', `/api/v1/tokens/${t.id}`);
                  tokens.reload();
                } catch (e) {
                  setError(errorText(e));
                }
              }}>Revoke</button></td></tr>
          ))}
          {tokens.data?.tokens?.length === 0 && <tr><td colSpan={7} class="muted">No tokens.</td></tr>}
        </tbody>
      </table>
      <h2>Sessions</h2>
      <table class="table" aria-label="sessions">
        <thead><tr><th>User</th><th>From</th><th>Started</th><th>Last seen</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {(sessions.data?.sessions ?? []).map((s: any) => (
            <tr><td>{s.username}</td><td>{s.source}{s.current && <b> (this one)</b>}</td><td>{time(s.created_ms)}</td><td>{ago(s.last_seen_ms)}</td>
              <td>{!s.current && <button type="button" onClick={async () => {
                try {
                  await api('DELETE', `/api/v1/auth/sessions/${s.id}`);
                  sessions.reload();
                } catch (e) {
                  setError(errorText(e));
                }
              }}>End</button>}</td></tr>
          ))}
          <EmptyRow cols={5} of={sessions} n={sessions.data?.sessions?.length ?? 0} text="No sessions." />
        </tbody>
      </table>
    </Page>
  );
}
