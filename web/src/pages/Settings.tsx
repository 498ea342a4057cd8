// Settings: retention and scrape intervals change here at run time (admin);
// the rest is shown as the config file and flags set it. Theme is per browser.
import { useState } from 'preact/hooks';
import { api, atLeast, fieldError, get, Role } from '../api';
import { Form, Page, useAsync } from '../ui';
import { setTheme, theme } from '../theme';

const HELP: Record<string, string> = {
  raw_retention_days: 'every sample, as scraped',
  m1_retention_days: '1-minute roll-ups (min, max, avg, last)',
  h1_retention_days: '1-hour roll-ups',
  agent_interval_ms: 'how often agents are scraped',
  exporter_interval_ms: 'how often other exporters are scraped (unless a target sets its own)',
};

export function SettingsPage({ role }: { role: Role }) {
  const admin = atLeast(role, 'admin');
  const settings = useAsync(() => (admin ? get<any>('/api/v1/settings') : Promise.resolve({ settings: [] })), [admin]);
  const [saved, setSaved] = useState('');
  const [t, setT] = useState(theme());
  const list: any[] = settings.data?.settings ?? [];
  const liveOnes = list.filter((s) => s.live);
  return (
    <Page title="Settings">
      <h2>Appearance</h2>
      <div class="filters" role="radiogroup" aria-label="theme">
        {(['system', 'dark', 'light'] as const).map((x) => (
          <label class="check"><input type="radio" name="theme" checked={t === x} onChange={() => { setTheme(x); setT(x); }} /> {x}</label>
        ))}
      </div>
      {admin && (
        <>
          <h2>Retention and intervals</h2>
          <Form label="Retention and intervals" class="form" onSubmit={async (f) => {
            const body: Record<string, number> = {};
            for (const s of liveOnes) {
              const v = String(f.get(s.name) ?? '');
              if (!/^\d+$/.test(v)) throw fieldError(s.name, `a whole number from ${s.min} to ${s.max}`);
              if (Number(v) !== s.value) body[s.name] = Number(v);
            }
            if (!Object.keys(body).length) {
              setSaved('Nothing changed.');
              return;
            }
            await api('PATCH', '/api/v1/settings', body);
            setSaved(`Saved: ${Object.keys(body).join(', ')}. In effect now, and kept across restarts.`);
            settings.reload();
          }}>
            {liveOnes.map((s) => (
              <label class="field">
                <span>{s.name}</span>
                <input name={s.name} type="number" min={s.min} max={s.max} defaultValue={String(s.value)} aria-describedby={`h-${s.name}`} />
                <small id={`h-${s.name}`} class="muted">{HELP[s.name]}</small>
              </label>
            ))}
            <button type="submit" class="primary">Save</button>
          </Form>
          {saved && <p role="status">{saved}</p>}
          <h2>Everything else</h2>
          <p class="muted">Set in the config file (<code>gpufleet serve --config</code>) or by flags; a restart applies them.</p>
          <table class="table" aria-label="settings">
            <thead><tr><th>Setting</th><th>Value</th></tr></thead>
            <tbody>{list.filter((s) => !s.live).map((s) => <tr><td class="mono">{s.name}</td><td>{s.value === null ? '–' : String(s.value)}</td></tr>)}</tbody>
          </table>
        </>
      )}
    </Page>
  );
}
