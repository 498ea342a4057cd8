// Where notifications go: webhooks (Alertmanager's payload), Slack and
// email receivers, each testable from here with a real send.
import { useState } from 'preact/hooks';
import { api, get } from '../api';
import { EmptyRow, errorText, Field, Form, useAsync } from '../ui';

export function Receivers({ can }: { can: boolean }) {
  const list = useAsync(() => get<any>('/api/v1/receivers'), []);
  const [adding, setAdding] = useState(false);
  const [type, setType] = useState('webhook');
  const [said, setSaid] = useState<Record<number, string>>({});
  return (
    <>
      <div class="page-head"><h2>Receivers</h2>
        {can && <button type="button" onClick={() => setAdding(!adding)} aria-expanded={adding}>Add receiver</button>}</div>
      {adding && (
        <Form label="Add receiver" class="form inline" onSubmit={async (f) => {
          const body: Record<string, unknown> = { name: f.get('name'), type: f.get('type'), url: f.get('url') };
          if (f.get('type') === 'email') for (const k of ['from', 'to', 'username', 'password']) if (f.get(k)) body[k] = f.get(k);
          await api('POST', '/api/v1/receivers', body);
          setAdding(false);
          list.reload();
        }}>
          <Field label="Name" name="name" required placeholder="oncall" />
          <label class="field"><span>Type</span>
            <select name="type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
              <option value="webhook">webhook (Alertmanager payload)</option><option value="slack">Slack</option><option value="email">email</option>
            </select></label>
          <Field label={type === 'email' ? 'SMTP server' : 'URL'} name="url" required
            placeholder={type === 'email' ? 'smtp://mail.example.com:587' : type === 'slack' ? 'https://hooks.slack.com/services/…' : 'https://pager.example.com/hook'} />
          {type === 'email' && (
            <>
              <Field label="From" name="from" required placeholder="gpufleet@example.com" />
              <Field label="To" name="to" required placeholder="oncall@example.com, ops@example.com" />
              <Field label="SMTP user" name="username" autocomplete="off" />
              <Field label="SMTP password" name="password" type="password" autocomplete="new-password" hint="kept by the server, never shown again" />
            </>
          )}
          <button type="submit" class="primary">Add</button>
        </Form>
      )}
      <table class="table" aria-label="receivers">
        <thead><tr><th>Name</th><th>Type</th><th>Where</th><th>Last test</th>{can && <th><span class="sr-only">Actions</span></th>}</tr></thead>
        <tbody>
          {(list.data?.receivers ?? []).map((r: any) => (
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
            </tr>
          ))}
          <EmptyRow cols={5} of={list} n={list.data?.receivers?.length ?? 0} text="No receivers: alerts show here but notify nobody." />
        </tbody>
      </table>
    </>
  );
}
