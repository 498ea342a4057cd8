// The fleet's health at a glance (GET /api/v1/health/fleet): each part of
// the server and each agent, with the reason whenever one is not ok.
import { useEffect } from 'preact/hooks';
import { get } from '../api';
import { useAsync } from '../ui';

const badge: Record<string, string> = { ok: 'online', off: 'unknown', unknown: 'unknown', stale: 'pending', degraded: 'pending', down: 'offline' };

function Status({ s }: { s: string }) {
  return <span class={`badge ${badge[s] ?? 'unknown'}`}>{s}</span>;
}

const names: Record<string, string> = {
  store: 'Store', scraper: 'Scraper', alert_evaluator: 'Alert evaluator', notifications: 'Notifications', remote_write: 'remote_write',
};

export function HealthPanel() {
  const h = useAsync(() => get<any>('/api/v1/health/fleet'), []);
  // read again every 2 s while shown, as the targets below
  useEffect(() => {
    const t = setInterval(h.reload, 2000);
    return () => clearInterval(t);
  }, []);
  if (h.error) return <p class="error" role="alert">{h.error}</p>;
  if (!h.data) return null;
  const d = h.data;
  return (
    <section aria-label="fleet health" data-status={d.status}>
      <h2>Health <Status s={d.status} /></h2>
      <table class="table" aria-label="components">
        <thead><tr><th>Part</th><th>Status</th><th>Detail</th></tr></thead>
        <tbody>
          {d.components.map((c: any) => (
            <tr data-component={c.name}><td>{names[c.name] ?? c.name}</td><td><Status s={c.status} /></td><td class="small">{c.detail}</td></tr>
          ))}
        </tbody>
      </table>
      {d.agents.length > 0 && (
        <table class="table" aria-label="agents">
          <thead><tr><th>Agent</th><th>Status</th><th>Version</th><th>Last sample</th><th>Detail</th></tr></thead>
          <tbody>
            {d.agents.map((a: any) => (
              <tr data-agent={a.server}><td>{a.server}</td><td><Status s={a.status} /></td><td class="mono">{a.version || '–'}</td>
                <td>{a.last_sample_age_s == null ? '–' : `${a.last_sample_age_s.toFixed(1)} s ago`}</td><td class="small">{a.detail}</td></tr>
            ))}
          </tbody>
        </table>
      )}
      {d.bmcs?.length > 0 && (
        <table class="table" aria-label="BMCs">
          <thead><tr><th>BMC of</th><th>Address</th><th>Status</th><th>Sensors</th><th>Detail</th></tr></thead>
          <tbody>
            {d.bmcs.map((b: any) => (
              <tr data-bmc={b.server}><td>{b.server}</td><td class="mono">{b.address}</td><td><Status s={b.status} /></td>
                <td>{b.sensors}</td><td class="small">{b.detail}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
