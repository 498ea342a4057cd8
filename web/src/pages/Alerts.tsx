// Alerts: what fires now (live), acknowledgements, rules and silences.
import { useState } from 'preact/hooks';
import { api, atLeast, get, Role } from '../api';
import { ago, time } from '../format';
import { live } from '../live';
import { EmptyRow, ErrorBox, errorText, Field, Form, Page, useAsync } from '../ui';
import { useLive } from '../hooks';

export function AlertsPage({ role }: { role: Role }) {
  useLive();
  const can = atLeast(role, 'operator');
  const rules = useAsync(() => get<any>('/api/v1/alerts/rules'), []);
  const silences = useAsync(() => get<any>('/api/v1/silences'), []);
  const history = useAsync(() => get<any>('/api/v1/alerts?state=resolved&limit=20'), []);
  const [error, setError] = useState('');
  const active = [...live.alerts.values()].sort((a, b) => (a.state === b.state ? b.id - a.id : a.state === 'firing' ? -1 : 1));
  return (
    <Page title="Alerts">
      <ErrorBox error={error} />
      <table class="table" aria-label="active alerts">
        <thead><tr><th>State</th><th>Alert</th><th>Where</th><th>Summary</th><th>Value</th><th>Since</th><th>Acknowledged</th>{can && <th><span class="sr-only">Actions</span></th>}</tr></thead>
        <tbody>
          {active.map((a) => (
            <tr class={`alert ${a.state}`} data-alert={a.rule}>
              <td><span class={`badge ${a.state}`}>{a.state}</span></td>
              <td>{a.rule}<div class="muted small">{a.labels.severity}</div></td>
              <td>{a.labels.server ?? a.labels.instance}{a.labels.gpu !== undefined && ` GPU ${a.labels.gpu}`}</td>
              <td>{a.annotations.summary}</td>
              <td>{Number.isFinite(a.value) ? +a.value.toFixed(2) : ''}</td>
              <td>{ago(a.fired_ms || a.active_ms || 0)}</td>
              <td>{a.ack_by || '–'}</td>
              {can && <td>{!a.ack_by && a.state === 'firing' && (
                <button type="button" onClick={async () => {
                  const comment = prompt('Comment (optional)') ?? '';
                  try {
                    await api('POST', `/api/v1/alerts/${a.id}/ack`, { comment });
                  } catch (e) {
                    setError(errorText(e));
                  }
                }}>Acknowledge</button>)}</td>}
            </tr>
          ))}
          {active.length === 0 && <tr><td colSpan={8} class="muted">Nothing is firing.</td></tr>}
        </tbody>
      </table>
      <h2>Silences</h2>
      {can && (
        <Form label="Add silence" class="form inline" onSubmit={async (f) => {
          await api('POST', '/api/v1/silences', { matchers: f.get('matchers'), duration: `${f.get('hours')}h`, comment: f.get('comment') });
          silences.reload();
        }}>
          <Field label="Matchers" name="matchers" required placeholder='{server="gpu-node-01",alertname="GpuHot"}' />
          <Field label="Hours" name="hours" type="number" value="2" min={1} max={720} />
          <Field label="Comment" name="comment" placeholder="maintenance" />
          <button type="submit" class="primary">Silence</button>
        </Form>
      )}
      <table class="table" aria-label="silences">
        <thead><tr><th>Matchers</th><th>Until</th><th>By</th><th>Comment</th>{can && <th><span class="sr-only">Actions</span></th>}</tr></thead>
        <tbody>
          {(silences.data?.silences ?? []).map((s: any) => (
            <tr><td class="mono small">{typeof s.matchers === 'string' ? s.matchers : JSON.stringify(s.matchers)}</td><td>{time(s.ends_ms)}</td><td>{s.created_by}</td><td>{s.comment}</td>
              {can && <td><button type="button" onClick={async () => {
                try {
                  await api('DELETE', `/api/v1/silences/${s.id}`);
                  silences.reload();
                } catch (e) {
                  setError(errorText(e));
                }
              }}>Expire</button></td>}</tr>
          ))}
          <EmptyRow cols={5} of={silences} n={silences.data?.silences?.length ?? 0} text="No silences: every firing alert is notified." />
        </tbody>
      </table>
      <h2>Rules</h2>
      <table class="table" aria-label="alert rules">
        <thead><tr><th>Name</th><th>Condition</th><th>For</th><th>Severity</th><th>Source</th></tr></thead>
        <tbody>
          {(rules.data?.rules ?? []).map((r: any) => (
            <tr><td>{r.name}</td><td class="mono small">{r.agg ?? 'last'}({r.metric ?? r.selector}{r.window ? `[${r.window}]` : ''}) {r.op} {r.threshold}</td><td>{r.for}</td><td>{r.severity}</td><td>{r.source}</td></tr>
          ))}
          <EmptyRow cols={5} of={rules} n={rules.data?.rules?.length ?? 0} text="No alert rules." />
        </tbody>
      </table>
      <h2>Recently resolved</h2>
      <table class="table" aria-label="resolved alerts">
        <thead><tr><th>Alert</th><th>Where</th><th>Summary</th><th>Resolved</th></tr></thead>
        <tbody>
          {(history.data?.alerts ?? []).map((a: any) => (
            <tr><td>{a.rule}</td><td>{a.labels.server ?? a.labels.instance}{a.labels.gpu !== undefined && ` GPU ${a.labels.gpu}`}</td><td>{a.annotations.summary}</td><td>{time(a.resolved_ms)}</td></tr>
          ))}
          <EmptyRow cols={4} of={history} n={history.data?.alerts?.length ?? 0} text="Nothing resolved recently." />
        </tbody>
      </table>
    </Page>
  );
}
