// Registries' credentials, for pulls from private registries and pushes:
// admins set them; the password is written once and never shown again.
import { api, get } from '../api';
import { ErrorBox, Form, useAsync } from '../ui';

interface Reg { registry: string; user: string; has_password: boolean }

export function Registries({ admin }: { admin: boolean }) {
  const list = useAsync(() => get<{ registries: Reg[] }>('/api/v1/registries'), []);
  const rows = list.data?.registries ?? [];
  return (
    <section class="panel" aria-label="registries">
      <h2>Registries</h2>
      <ErrorBox error={list.error} />
      <table class="table small" aria-label="registry credentials">
        <thead><tr><th>Registry</th><th>User</th><th>Password</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr data-registry={r.registry}>
              <td class="mono">{r.registry}</td><td>{r.user}</td><td>{r.has_password ? 'set' : '–'}</td>
              <td class="row-actions">{admin && <button type="button" class="danger" onClick={async () => {
                if (!confirm(`Forget the credentials of ${r.registry}?`)) return;
                await api('DELETE', `/api/v1/registries/${encodeURIComponent(r.registry)}`).catch(() => {});
                list.reload();
              }}>Forget</button>}</td>
            </tr>
          ))}
          {!rows.length && <tr><td colSpan={4} class="muted">None: pulls and pushes go without credentials.</td></tr>}
        </tbody>
      </table>
      {admin && (
        <Form label="Set a registry's credentials" class="form" onSubmit={async (f) => {
          await api('PUT', `/api/v1/registries/${encodeURIComponent(String(f.get('registry') ?? '').trim())}`, {
            user: String(f.get('user') ?? ''), password: String(f.get('password') ?? ''),
          });
          list.reload();
        }}>
          <label class="field"><span>Registry</span><input name="registry" required placeholder="registry.example.com:5000" /></label>
          <label class="field"><span>User</span><input name="user" required autocomplete="off" /></label>
          <label class="field"><span>Password</span><input name="password" type="password" required autocomplete="new-password" /></label>
          <button type="submit" class="primary">Save</button>
        </Form>
      )}
    </section>
  );
}
