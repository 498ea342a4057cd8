// Fleet operations (admins): the fleet key, a fleet file's plan, and its
// apply over SSH with each host's step live (GET /api/v1/fleet/apply, read
// again at every "fleet_apply" event on the WebSocket).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get } from '../api';
import { useLive } from '../hooks';
import { live } from '../live';
import { ErrorBox, errorText, Page, useAsync } from '../ui';

const badge: Record<string, string> = { ok: 'online', unchanged: 'online', removed: 'online', failed: 'offline', running: 'pending', waiting: 'unknown', kept: 'unknown' };

export function DeployPage() {
  useLive();
  const key = useAsync(() => get<{ public_key: string }>('/api/v1/fleet/ssh-key'), []);
  const status = useAsync(() => get<any>('/api/v1/fleet/apply').catch(() => null), []);
  const [plan, setPlan] = useState<any>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const seq = live.fleetApplySeq;
  useEffect(() => {
    if (seq) status.reload();
  }, [seq]);

  const body = () => {
    const f = new FormData(form.current!);
    const secrets = String(f.get('secrets') ?? '').trim();
    return { fleet: String(f.get('fleet') ?? ''), secrets: secrets || undefined, prune: f.get('prune') === 'on' };
  };
  const run = async (what: 'plan' | 'apply') => {
    setBusy(true);
    setError('');
    try {
      if (what === 'plan') setPlan(await api('POST', '/api/v1/fleet/plan', body()));
      else {
        if (body().prune && !confirm('Also uninstall and remove the registered servers the file does not name?')) return;
        await api('POST', '/api/v1/fleet/apply', body());
        setPlan(null);
        status.reload();
      }
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const st = status.data;
  return (
    <Page title="Deploy">
      <p>A fleet file names the servers of a site and how to reach them over SSH; applying it installs the agent as a systemd service on each new or changed server, checks it and registers it. <code>gpufleet fleet apply -c fleet.yaml</code> does the same from a shell.</p>
      <h2>Fleet key</h2>
      <p class="small">Add it to <code>~/.ssh/authorized_keys</code> of the SSH user on each host.</p>
      {key.data && <pre class="mono small wrap-any" data-testid="fleet-key">{key.data.public_key}</pre>}
      <ErrorBox error={key.error} />
      <form ref={form} class="form" aria-label="fleet file" onSubmit={(e) => { e.preventDefault(); run('plan'); }}>
        <fieldset disabled={busy}>
          <label class="field wide"><span>Fleet file (YAML)</span>
            <textarea name="fleet" class="mono" rows={12} required placeholder={'site: dc1\nservers:\n  - name: gpu-01\n    address: 10.0.0.21'} /></label>
          <label class="field wide"><span>Secrets (YAML, optional: bmc_password, servers: NAME: bmc_password)</span>
            <textarea name="secrets" class="mono" rows={3} autocomplete="off" /></label>
          <label class="check"><input type="checkbox" name="prune" /> Uninstall and remove registered servers the file does not name</label>
          <button type="submit">Plan</button>
          <button type="button" class="primary" onClick={() => run('apply')}>Apply</button>
        </fieldset>
      </form>
      <ErrorBox error={error} />
      {plan && (
        <section aria-label="plan">
          <h2>Plan for {plan.site}</h2>
          <p>{plan.summary.install} to install, {plan.summary.update} to update, {plan.summary.unchanged} unchanged, {plan.summary.remove} registered but not in the file.</p>
          {plan.admin_user && <p data-testid="admin-user">Admin user <b>{plan.admin_user.name}</b>: {plan.admin_user.state} ({plan.admin_user.detail})</p>}
          <table class="table" aria-label="planned changes">
            <thead><tr><th>Server</th><th>Action</th><th>What differs</th></tr></thead>
            <tbody>
              {plan.changes.map((c: any) => (
                <tr data-plan={c.server}><td>{c.server}</td><td>{c.action}</td>
                  <td class="small mono">{Object.entries(c.fields).map(([k, v]: [string, any]) => `${k}: ${JSON.stringify(v[0])} → ${JSON.stringify(v[1])}`).join('; ')}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {st && (
        <section aria-label="apply" data-state={st.state}>
          <h2>Apply {st.id}: {st.state === 'running' ? 'running' : 'done'}</h2>
          <p>{st.summary.ok} installed or updated, {st.summary.unchanged} unchanged, {st.summary.removed} removed, {st.summary.kept} kept, {st.summary.failed} failed.</p>
          <table class="table" aria-label="hosts">
            <thead><tr><th>Server</th><th>Action</th><th>State</th><th>Step</th><th>Time</th><th>Detail</th></tr></thead>
            <tbody>
              {st.hosts.map((h: any) => (
                <tr data-host={h.server}><td>{h.server}</td><td>{h.action}</td>
                  <td><span class={`badge ${badge[h.state] ?? 'unknown'}`}>{h.state}</span></td>
                  <td>{h.step || '–'}</td><td>{(h.ms / 1000).toFixed(1)} s</td><td class="small">{h.detail}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </Page>
  );
}
