// Settings: retention, intervals, container defaults, quotas and placement
// change here at run time (admin); the rest is shown as the config file and
// flags set it. Theme is per browser.
import { useState } from 'preact/hooks';
import { api, atLeast, fieldError, get, Role } from '../api';
import { Form, Page, useAsync } from '../ui';
import { setTheme, theme } from '../theme';

const UNITS: Record<string, string> = { days: 'days', ms: 'ms', s: 'seconds', bytes: 'bytes', mib: 'MiB', percent: '%' };

/** "raw_retention_days" -> "Raw retention (days)": a setting's name in words,
 * its unit in brackets (the config key stays in the help line). */
export function settingLabel(name: string): string {
  const parts = name.split('_');
  const unit = UNITS[parts[parts.length - 1]];
  const words = (unit ? parts.slice(0, -1) : parts).join(' ').replace(/\bgpu\b/g, 'GPU').replace(/\bui\b/g, 'UI').replace(/\btls\b/g, 'TLS')
    .replace(/\bm1\b/, '1-minute').replace(/\bh1\b/, '1-hour');
  return `${words.charAt(0).toUpperCase()}${words.slice(1)}${unit ? ` (${unit})` : ''}`;
}

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
            const body: Record<string, number | string> = {};
            for (const s of liveOnes) {
              const v = String(f.get(s.name) ?? '');
              if (typeof s.value === 'string') {
                if (v !== s.value) body[s.name] = v;
                continue;
              }
              if (!/^\d+$/.test(v)) throw fieldError(s.name, `a whole number from ${s.min} to ${s.max}`);
              if (Number(v) !== s.value) body[s.name] = Number(v);
            }
            if (!Object.keys(body).length) {
              setSaved('Nothing changed.');
              return;
            }
            await api('PATCH', '/api/v1/settings', body);
            setSaved(`Saved: ${Object.keys(body).map(settingLabel).join(', ')}. In effect now, and kept across restarts.`);
            settings.reload();
          }}>
            {liveOnes.map((s) => (
              <label class="field">
                <span>{settingLabel(s.name)}</span>
                {s.choices ? (
                  <select name={s.name} defaultValue={s.value} aria-describedby={`h-${s.name}`}>
                    {s.choices.map((c: string) => <option value={c}>{c}</option>)}
                  </select>
                ) : typeof s.value === 'string' ? (
                  <input name={s.name} defaultValue={s.value} aria-describedby={`h-${s.name}`} />
                ) : (
                  <input name={s.name} type="number" min={s.min} max={s.max} defaultValue={String(s.value)} aria-describedby={`h-${s.name}`} />
                )}
                <small id={`h-${s.name}`} class="hint">{s.help}{s.min != null && s.max != null ? ` (${s.min} to ${s.max})` : ''} · <code>{s.name}</code></small>
              </label>
            ))}
            <button type="submit" class="primary">Save</button>
          </Form>
          {saved && <p role="status">{saved}</p>}
          <h2>Everything else</h2>
          <p class="muted">Set in the config file (<code>gpufleet serve --config</code>) or by flags; a restart applies them.</p>
          <table class="table" aria-label="settings">
            <thead><tr><th>Setting</th><th>Value</th><th>What it does</th></tr></thead>
            <tbody>{list.filter((s) => !s.live).map((s) => (
              <tr data-setting={s.name}><td>{settingLabel(s.name)}<div class="mono small muted">{s.name}</div></td>
                <td>{s.value === null ? '–' : String(s.value)}</td><td class="small">{s.help}</td></tr>
            ))}</tbody>
          </table>
        </>
      )}
    </Page>
  );
}
