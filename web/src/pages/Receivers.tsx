// Where notifications go: webhooks (Alertmanager's payload), Slack and
// email receivers, each testable from here with a real send.
import { useState } from 'preact/hooks';
import { api, get } from '../api';
import { EmptyRow, errorText, Field, Form, useAsync } from '../ui';

interface Route { matchers: string; receivers: string[]; continue: boolean }

/** Which receivers get which alerts: routes by labels, first match wins
 * (unless it says continue); what no route takes goes to the receivers no
 * route names. Edited as a whole and saved at once. */
function Routing({ can, names, onSaved }: { can: boolean; names: string[]; onSaved: () => void }) {
  const got = useAsync(() => get<any>('/api/v1/alerts/routes'), []);
  const [routes, setRoutes] = useState<Route[] | null>(null);
  const [said, setSaid] = useState('');
  const shown: Route[] = routes ?? got.data?.routes ?? [];
  const edit = (i: number, r: Partial<Route>) => setRoutes(shown.map((x, k) => (k === i ? { ...x, ...r } : x)));
  const defaults: string[] = got.data?.default_receivers ?? [];
  return (
    <>
      <h3>Routing</h3>
      <p class="muted small">An alert goes to the receivers of the first route its labels match (and on, while a matched route says continue).
        {' '}{!shown.length ? 'With no routes, every receiver gets every alert.' : defaults.length ? <>Alerts no route takes go to: <b data-testid="default-receivers">{defaults.join(', ')}</b>.</>
          : <>Alerts no route takes go to <b data-testid="default-receivers">nobody</b> (every receiver is named by a route).</>}</p>
      <Form label="Routes" class="form" onSubmit={async () => {
        await api('PUT', '/api/v1/alerts/routes', { routes: shown });
        setRoutes(null);
        setSaid('Saved: in effect for the next notification.');
        got.reload();
        onSaved();
      }}>
        <table class="table" aria-label="routes">
          <thead><tr><th>#</th><th>When the labels match</th><th>Send to</th><th>Continue</th>{can && <th><span class="sr-only">Actions</span></th>}</tr></thead>
          <tbody>
            {shown.map((r, i) => (
              <tr data-route={i}>
                <td>{i + 1}</td>
                <td><input name={`routes[${i}].matchers`} class="mono" value={r.matchers} disabled={!can} placeholder='{severity="critical"}'
                  onInput={(e) => edit(i, { matchers: (e.target as HTMLInputElement).value })} /></td>
                <td><fieldset class="row" name={`routes[${i}].receivers`}>{names.map((n) => (
                  <label class="check"><input type="checkbox" disabled={!can} checked={r.receivers.includes(n)}
                    onChange={(e) => edit(i, { receivers: (e.target as HTMLInputElement).checked ? [...r.receivers, n] : r.receivers.filter((x) => x !== n) })} /> {n}</label>
                ))}</fieldset></td>
                <td><input type="checkbox" aria-label={`route ${i + 1} continues`} disabled={!can} checked={r.continue} onChange={(e) => edit(i, { continue: (e.target as HTMLInputElement).checked })} /></td>
                {can && <td class="row-actions">
                  <button type="button" disabled={i === 0} onClick={() => setRoutes(shown.map((x, k) => (k === i - 1 ? shown[i] : k === i ? shown[i - 1] : x)))}>Up</button>
                  <button type="button" onClick={() => setRoutes(shown.filter((_, k) => k !== i))}>Remove</button>
                </td>}
              </tr>
            ))}
            <EmptyRow cols={5} of={got} n={shown.length} text="No routes." />
          </tbody>
        </table>
        {can && (
          <div class="actions">
            <button type="button" onClick={() => setRoutes([...shown, { matchers: '{severity="critical"}', receivers: [], continue: false }])}>Add route</button>
            <button type="submit" class="primary" disabled={!routes}>Save routes</button>
          </div>
        )}
      </Form>
      {said && <p role="status">{said}</p>}
    </>
  );
}

/** Adding a receiver, or changing one (r): an email one's password left
 * blank stays as it was (the server never shows it). */
function ReceiverForm({ r, onDone }: { r: any | null; onDone: () => void }) {
  const [type, setType] = useState<string>(r?.type ?? 'webhook');
  return (
    <Form label={r ? `Edit receiver ${r.name}` : 'Add receiver'} class="form inline" onSubmit={async (f) => {
      const body: Record<string, unknown> = { name: f.get('name'), type: f.get('type'), url: f.get('url') };
      if (f.get('type') === 'email') for (const k of ['from', 'to', 'username', 'password']) if (f.get(k)) body[k] = f.get(k);
      if (r) await api('PUT', `/api/v1/receivers/${r.id}`, body);
      else await api('POST', '/api/v1/receivers', body);
      onDone();
    }}>
      <Field label="Name" name="name" required value={r?.name} placeholder="oncall" />
      <label class="field"><span>Type</span>
        <select name="type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
          <option value="webhook">webhook (Alertmanager payload)</option><option value="slack">Slack</option><option value="email">email</option>
        </select></label>
      <Field label={type === 'email' ? 'SMTP server' : 'URL'} name="url" required value={r?.url}
        placeholder={type === 'email' ? 'smtp://mail.example.com:587' : type === 'slack' ? 'https://hooks.slack.com/services/…' : 'https://pager.example.com/hook'} />
      {type === 'email' && (
        <>
          <Field label="From" name="from" required value={r?.from} placeholder="gpufleet@example.com" />
          <Field label="To" name="to" required value={r?.to} placeholder="oncall@example.com, ops@example.com" />
          <Field label="SMTP user" name="username" value={r?.username} autocomplete="off" />
          <Field label="SMTP password" name="password" type="password" autocomplete="new-password"
            hint={r?.password_set ? 'set; leave blank to keep it' : 'kept by the server, never shown again'} />
        </>
      )}
      <button type="submit" class="primary">{r ? 'Save' : 'Add'}</button>
      {r && <button type="button" onClick={onDone}>Cancel</button>}
    </Form>
  );
}

export function Receivers({ can }: { can: boolean }) {
  const list = useAsync(() => get<any>('/api/v1/receivers'), []);
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<number | null>(null);
  const [said, setSaid] = useState<Record<number, string>>({});
  return (
    <>
      <div class="page-head"><h2>Receivers</h2>
        {can && <button type="button" onClick={() => setAdding(!adding)} aria-expanded={adding}>Add receiver</button>}</div>
      {adding && <ReceiverForm r={null} onDone={() => { setAdding(false); list.reload(); }} />}
      <table class="table" aria-label="receivers">
        <thead><tr><th>Name</th><th>Type</th><th>Where</th><th>Last test</th>{can && <th><span class="sr-only">Actions</span></th>}</tr></thead>
        <tbody>
          {(list.data?.receivers ?? []).flatMap((r: any) => [
            <tr data-receiver={r.name}><td>{r.name}</td><td>{r.type}</td><td class="mono small">{r.url}</td>
              <td class="small" role="status">{said[r.id] ?? ''}</td>
              {can && <td class="row-actions">
                <button type="button" onClick={async () => {
                  setSaid((s) => ({ ...s, [r.id]: 'sending…' }));
                  try {
                    await api('POST', `/api/v1/receivers/${r.id}/test`);
                    setSaid((s) => ({ ...s, [r.id]: 'delivered' }));
                  } catch (e) {
                    setSaid((s) => ({ ...s, [r.id]: `not delivered: ${errorText(e)}` }));
                  }
                }}>Test</button>
                <button type="button" aria-expanded={editing === r.id} onClick={() => setEditing(editing === r.id ? null : r.id)}>Edit</button>
                <button type="button" class="danger" onClick={async () => {
                  if (!confirm(`Remove receiver ${r.name}?`)) return;
                  try {
                    await api('DELETE', `/api/v1/receivers/${r.id}`);
                    list.reload();
                  } catch (e) {
                    setSaid((s) => ({ ...s, [r.id]: errorText(e) }));
                  }
                }}>Remove</button>
              </td>}
            </tr>,
            editing === r.id && <tr class="detail"><td colSpan={5}><ReceiverForm r={r} onDone={() => { setEditing(null); list.reload(); }} /></td></tr>,
          ])}
          <EmptyRow cols={5} of={list} n={list.data?.receivers?.length ?? 0} text="No receivers: alerts show here but notify nobody." />
        </tbody>
      </table>
      {(list.data?.receivers?.length ?? 0) > 0 && <Routing can={can} names={(list.data?.receivers ?? []).map((r: any) => r.name)} onSaved={list.reload} />}
    </>
  );
}
