// The audit log with filters and paging (admin).
import { useState } from 'preact/hooks';
import { get, qs } from '../api';
import { time } from '../format';
import { ErrorBox, Page, useAsync } from '../ui';

function toSeconds(local: string): string | undefined {
  if (!local) return undefined;
  const t = new Date(local).getTime();
  return Number.isFinite(t) ? String(t / 1000) : undefined;
}

export function AuditPage() {
  const [filters, setFilters] = useState({ user: '', action: '', target: '', since: '', until: '' });
  const [before, setBefore] = useState<number[]>([]); // stack of pages' before_id
  const cur = before[before.length - 1];
  const q = { user: filters.user, action: filters.action, target: filters.target, since: toSeconds(filters.since), until: toSeconds(filters.until), limit: 50, before_id: cur };
  const log = useAsync(() => get<any>('/api/v1/audit' + qs(q)), [JSON.stringify(q)]);
  const entries: any[] = log.data?.entries ?? [];
  return (
    <Page title="Audit log">
      <form class="filters" role="search" aria-label="audit filters" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        setBefore([]);
        setFilters({ user: String(f.get('user')), action: String(f.get('action')), target: String(f.get('target')), since: String(f.get('since')), until: String(f.get('until')) });
      }}>
        <label class="field"><span>User</span><input name="user" defaultValue={filters.user} /></label>
        <label class="field"><span>Action</span><input name="action" defaultValue={filters.action} placeholder="server.* or user.create" /></label>
        <label class="field"><span>Target</span><input name="target" defaultValue={filters.target} /></label>
        <label class="field"><span>Since</span><input name="since" type="datetime-local" defaultValue={filters.since} /></label>
        <label class="field"><span>Until</span><input name="until" type="datetime-local" defaultValue={filters.until} /></label>
        <button type="submit" class="primary">Filter</button>
      </form>
      <ErrorBox error={log.error} />
      <table class="table" aria-label="audit entries">
        <thead><tr><th>When</th><th>User</th><th>Role</th><th>From</th><th>Action</th><th>Target</th><th>Result</th><th>Details</th></tr></thead>
        <tbody>
          {entries.map((e) => (
            <tr class={e.result !== 'ok' ? 'denied' : ''}>
              <td>{time(e.ts_ms)}</td><td>{e.username}</td><td>{e.role}</td><td>{e.source}</td><td class="mono">{e.action}</td>
              <td>{e.target}</td><td>{e.result} ({e.status})</td><td class="mono small">{e.details ? JSON.stringify(e.details) : ''}</td>
            </tr>
          ))}
          {!log.loading && entries.length === 0 && <tr><td colSpan={8} class="muted">No entries.</td></tr>}
        </tbody>
      </table>
      <div class="row">
        <button type="button" disabled={!before.length} onClick={() => setBefore(before.slice(0, -1))}>Newer</button>
        <button type="button" disabled={!log.data?.next_before_id || entries.length < 50} onClick={() => setBefore([...before, log.data.next_before_id])}>Older</button>
      </div>
    </Page>
  );
}
