// Alerts: what fires now (live), acknowledgements, rules and silences.
import { useState } from 'preact/hooks';
import { api, atLeast, get, Role } from '../api';
import { ago, time } from '../format';
import { Alert, live } from '../live';
import { AlertRules } from './AlertRules';
import { Receivers } from './Receivers';
import { EmptyRow, ErrorBox, errorText, Field, Form, Page, useAsync } from '../ui';
import { useLive } from '../hooks';

/** Acknowledging: who is on it and why, said in a dialog, not a prompt. */
function AckDialog({ a, onClose }: { a: Alert; onClose: () => void }) {
  return (
    <div class="dialog-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="ack-title">
        <h2 id="ack-title">Acknowledge {a.rule}</h2>
        <p class="muted">{a.labels.server ?? a.labels.instance}{a.labels.gpu !== undefined && ` GPU ${a.labels.gpu}`}: {a.annotations.summary}</p>
        <Form label="Acknowledge" onSubmit={async (f) => {
          await api('POST', `/api/v1/alerts/${a.id}/ack`, { comment: String(f.get('comment') ?? '').trim() });
          onClose();
        }}>
          <label class="field wide"><span>Comment</span>
            <textarea name="comment" rows={3} maxLength={1024} placeholder="on it: draining the node" autoFocus /></label>
          <p class="muted small">Its notifications stop repeating while acknowledged; everyone sees who and why.</p>
          <div class="actions">
            <button type="submit" class="primary">Acknowledge</button>
            <button type="button" onClick={onClose}>Cancel</button>
          </div>
        </Form>
      </div>
    </div>
  );
}

export function AlertsPage({ role }: { role: Role }) {
  useLive();
  const can = atLeast(role, 'operator');
  const [acking, setAcking] = useState<Alert | null>(null);
  const silences = useAsync(() => get<any>('/api/v1/silences'), []);
  const history = useAsync(() => get<any>('/api/v1/alerts?state=resolved&limit=20'), []);
  const [error, setError] = useState('');
  const active = [...live.alerts.values()].sort((a, b) => (a.state === b.state ? b.id - a.id : a.state === 'firing' ? -1 : 1));
  return (
    <Page title="Alerts">
      {acking && <AckDialog a={acking} onClose={() => setAcking(null)} />}
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
              <td data-testid="ack">{a.ack_by ? <><b>{a.ack_by}</b>{a.ack_ms ? <span class="muted small"> {ago(a.ack_ms)}</span> : null}
                {a.ack_comment && <div class="small ack-comment">“{a.ack_comment}”</div>}</> : '–'}</td>
              {can && <td>{a.state === 'firing' && (!a.ack_by ? (
                <button type="button" onClick={() => setAcking(a)}>Acknowledge</button>
              ) : (
                <button type="button" onClick={async () => {
                  try {
                    await api('DELETE', `/api/v1/alerts/${a.id}/ack`);
                  } catch (e) {
                    setError(errorText(e));
                  }
                }}>Take back</button>
              ))}</td>}
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
      <AlertRules can={can} />
      {can && <Receivers can={can} />}
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
