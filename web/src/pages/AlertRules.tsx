// Alert rules: the list, and a form to make or change one (the rules made
// through the API; file and built-in ones are read-only) with thresholds in
// the metric's own units ("5 GB", "85 °C") and a preview of the series that
// would fire now.
import { useState } from 'preact/hooks';
import { api, fieldError, get } from '../api';
import { bytes } from '../format';
import { EmptyRow, errorText, Field, Form, labelsText, parseLabels, Select, useAsync } from '../ui';

const AGGS = ['last', 'avg', 'min', 'max', 'sum', 'count', 'rate', 'increase'];
const OPS = ['>', '>=', '<', '<=', '==', '!='];
const SEVERITIES = ['info', 'warning', 'critical'];

/** The unit a metric is in, from its name (the exporters' conventions). */
export function metricUnit(selector: string): string {
  const m = selector.replace(/\{.*$/, '').trim();
  if (/_bytes(_total)?$/.test(m)) return 'B';
  if (/^DCGM_FI_DEV_FB_/.test(m)) return 'MiB';
  if (/_TEMP$|_celsius$/.test(m)) return '°C';
  if (/POWER_USAGE$|POWER_LIMIT$|_watts$/.test(m)) return 'W';
  if (/_UTIL$|_percent$|FAN_SPEED$/.test(m)) return '%';
  if (/_CLOCK$|_mhz$/.test(m)) return 'MHz';
  return '';
}

const BYTE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, k: 1e3, m: 1e6, g: 1e9, t: 1e12,
};

/** "5 GB" for a metric in MiB -> 4768.37...; "85" as it is; a unit the
 * metric is not in is refused, naming the one it is in. */
export function parseThreshold(text: string, unit: string): number {
  const m = /^\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(\S*)\s*$/i.exec(text);
  if (!m) throw fieldError('threshold', 'a number, with a unit if you like ("5 GB", "85 °C", "90%")');
  const v = Number(m[1]), u = m[2].toLowerCase().replace(/^°/, '');
  if (!u) return v;
  if (unit === 'B' || unit === 'MiB') {
    const k = BYTE_UNITS[u];
    if (!k) throw fieldError('threshold', `${m[2]} is not a size; say B, KB, MB, GB, TB or KiB, MiB, GiB, TiB`);
    return (v * k) / (unit === 'MiB' ? 2 ** 20 : 1);
  }
  const same = u === unit.toLowerCase().replace(/^°/, '') || (unit === '°C' && u === 'c');
  if (unit && same) return v;
  if (!unit && BYTE_UNITS[u] && !/b$/.test(u)) return v * BYTE_UNITS[u]; // 1.5k
  throw fieldError('threshold', unit ? `this metric is in ${unit}, not ${m[2]}` : `this metric has no unit to read ${m[2]} in: give a number`);
}

/** A threshold as people read it in the metric's unit. */
export function thresholdText(v: number, unit: string): string {
  if (unit === 'B') return bytes(v);
  if (unit === 'MiB') return bytes(v * 2 ** 20);
  return `${v}${unit === '%' ? '%' : unit ? ` ${unit}` : ''}`;
}


/** The rule a form describes, as the API takes it. */
function ruleOf(f: FormData) {
  /* a PromQL rule: every element of the expression's result is an alert */
  if (f.get('kind') === 'promql') {
    return ruleTail(f, { name: String(f.get('name') ?? '').trim(), expr: String(f.get('expr') ?? '').trim(), severity: f.get('severity') });
  }
  const metric = String(f.get('metric') ?? '').trim();
  const agg = String(f.get('agg') ?? 'last');
  const body: Record<string, unknown> = {
    name: String(f.get('name') ?? '').trim(), metric, agg, op: f.get('op'),
    threshold: parseThreshold(String(f.get('threshold') ?? ''), metricUnit(metric)), severity: f.get('severity'),
  };
  if (agg !== 'last') body.window = String(f.get('window') || '5m');
  return ruleTail(f, body);
}

/** What every rule may have: for, labels, a summary. */
function ruleTail(f: FormData, body: Record<string, unknown>) {
  if (String(f.get('for') ?? '').trim()) body.for = String(f.get('for')).trim();
  const labels = parseLabels(String(f.get('labels') ?? ''));
  if (Object.keys(labels).length) body.labels = labels;
  const summary = String(f.get('summary') ?? '').trim();
  if (summary) body.annotations = { summary };
  return body;
}

interface Preview { series: number; with_value: number; firing: number; matches: { labels: Record<string, string>; value: number; fires: boolean }[] }

function where(l: Record<string, string>) {
  const at = l.server ?? l.instance ?? '';
  return `${at}${l.gpu !== undefined ? ` GPU ${l.gpu}` : ''}${l.device && l.gpu === undefined ? ` ${l.device}` : ''}${l.mountpoint ? ` ${l.mountpoint}` : ''}` || l.metric;
}

function RuleForm({ rule, onDone }: { rule: any | null; onDone: () => void }) {
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState('');
  const [kind, setKind] = useState(rule?.expr ? 'promql' : 'threshold');
  const names = useAsync(() => get<any>('/api/v1/label/__name__/values'), []);
  const unit = metricUnit(rule?.metric ?? '');
  const form = (e: Event) => new FormData((e.target as HTMLElement).closest('form') as HTMLFormElement);
  return (
    <Form label={rule ? `Edit rule ${rule.name}` : 'New alert rule'} class="form create rule-form" onSubmit={async (f) => {
      const body = ruleOf(f);
      if (rule) await api('PUT', `/api/v1/alerts/rules/${rule.id}`, body);
      else await api('POST', '/api/v1/alerts/rules', body);
      onDone();
    }}>
      <fieldset>
        <Field label="Name" name="name" value={rule?.name} required placeholder="GpuMemoryLow" />
        <label class="field"><span>Condition</span>
          <select name="kind" onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            <option value="threshold" selected={kind === 'threshold'}>A metric past a threshold</option>
            <option value="promql" selected={kind === 'promql'}>A PromQL expression</option>
          </select></label>
        {kind === 'promql' ? (
          <label class="field wide"><span>PromQL expression (each series it gives is an alert)</span>
            <textarea name="expr" class="mono" rows={2} required defaultValue={rule?.expr}
              placeholder="DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > 0.95" /></label>
        ) : (
          <>
            <label class="field wide"><span>Metric (a series selector)</span>
              <input name="metric" list="metric-names" required defaultValue={rule?.metric} placeholder='DCGM_FI_DEV_FB_FREE{server=~"gpu-.*"}' />
              <datalist id="metric-names">{(names.data?.data ?? []).map((n: string) => <option value={n} />)}</datalist>
            </label>
            <Select label="Aggregation" name="agg" options={AGGS} value={rule?.agg ?? 'last'} />
            <Field label="Window" name="window" value={rule?.window ?? '5m'} hint="for aggregations other than last" />
            <Select label="When the value is" name="op" options={OPS} value={rule?.op ?? '>'} />
            <Field label="Threshold" name="threshold" required value={rule ? thresholdText(rule.threshold, unit) : ''} placeholder="5 GB, 85 °C, 90%"
              hint="in the metric's unit, or with one: 5 GB, 512 MiB, 85 °C" />
          </>
        )}
        <Field label="For" name="for" value={rule?.for ?? ''} placeholder="2m" hint="how long it must hold before firing" />
        <Select label="Severity" name="severity" options={SEVERITIES} value={rule?.severity ?? 'warning'} />
        <Field label="Labels" name="labels" value={labelsText(rule?.labels)} placeholder="team=vision" />
        <label class="field wide"><span>Summary</span>
          <input name="summary" defaultValue={rule?.annotations?.summary} placeholder="GPU {{ $labels.gpu }} on {{ $host }}: {{ $value }}" /></label>
      </fieldset>
      <div class="actions">
        <button type="button" onClick={async (e) => {
          setPreviewError('');
          try {
            setPreview(await api<Preview>('POST', '/api/v1/alerts/rules/preview', ruleOf(form(e))));
          } catch (err) {
            setPreview(null);
            setPreviewError(errorText(err));
          }
        }}>Preview</button>
        <button type="submit" class="primary">{rule ? 'Save rule' : 'Create rule'}</button>
        <button type="button" onClick={onDone}>Cancel</button>
      </div>
      {previewError && <p class="error" role="alert">{previewError}</p>}
      {preview && (
        <div class="preview" data-testid="rule-preview">
          {kind === 'promql' ? <p><b>{preview.firing}</b> series would fire now{preview.firing ? '' : ': nothing would fire'}.</p> : (
          <p><b>{preview.firing}</b> of {preview.with_value} series with a value would be past the threshold now
            {preview.series > preview.with_value ? ` (${preview.series - preview.with_value} more match but have no recent value)` : ''}
            {preview.firing ? '' : ': nothing would fire'}.</p>)}
          {preview.matches.length > 0 && (
            <table class="table small" aria-label="preview">
              <thead><tr><th>Where</th><th>Value</th><th>Fires</th></tr></thead>
              <tbody>{preview.matches.map((m) => (
                <tr class={m.fires ? 'fires' : ''}><td>{where(m.labels)}</td><td>{thresholdText(+m.value.toFixed(3), metricUnit(m.labels.metric ?? ''))}</td><td>{m.fires ? 'yes' : 'no'}</td></tr>
              ))}</tbody>
            </table>
          )}
        </div>
      )}
    </Form>
  );
}

export function AlertRules({ can }: { can: boolean }) {
  const rules = useAsync(() => get<any>('/api/v1/alerts/rules'), []);
  const [editing, setEditing] = useState<any | 'new' | null>(null);
  const [error, setError] = useState('');
  const done = () => {
    setEditing(null);
    rules.reload();
  };
  return (
    <>
      <div class="page-head"><h2>Rules</h2>
        {can && <button type="button" onClick={() => setEditing(editing === 'new' ? null : 'new')} aria-expanded={editing === 'new'}>New rule</button>}</div>
      {editing === 'new' && <RuleForm rule={null} onDone={done} />}
      {error && <p class="error" role="alert">{error}</p>}
      <table class="table" aria-label="alert rules">
        <thead><tr><th>Name</th><th>Condition</th><th>For</th><th>Severity</th><th>Source</th>{can && <th><span class="sr-only">Actions</span></th>}</tr></thead>
        <tbody>
          {(rules.data?.rules ?? []).flatMap((r: any) => [
            <tr data-rule={r.name}><td>{r.name}</td>
              <td class="mono small">{r.expr ? <span title="PromQL">{r.expr}</span> : <>{r.agg ?? 'last'}({r.metric ?? r.selector}{r.agg && r.agg !== 'last' ? `[${r.window ?? '1m'}]` : ''}) {r.op} {thresholdText(r.threshold, metricUnit(r.metric ?? ''))}</>}</td>
              <td>{r.for ?? '–'}</td><td>{r.severity ?? 'warning'}</td><td>{r.source}</td>
              {can && <td class="row-actions">{r.source === 'api' && (
                <>
                  <button type="button" onClick={() => setEditing(editing?.id === r.id ? null : r)}>Edit</button>
                  <button type="button" class="danger" onClick={async () => {
                    if (!confirm(`Delete rule ${r.name}? Its alerts end.`)) return;
                    try {
                      await api('DELETE', `/api/v1/alerts/rules/${r.id}`);
                      rules.reload();
                    } catch (e) {
                      setError(errorText(e));
                    }
                  }}>Delete</button>
                </>
              )}</td>}
            </tr>,
            editing && editing !== 'new' && editing.id === r.id && <tr class="detail"><td colSpan={6}><RuleForm rule={r} onDone={done} /></td></tr>,
          ])}
          <EmptyRow cols={6} of={rules} n={rules.data?.rules?.length ?? 0} text="No alert rules." />
        </tbody>
      </table>
    </>
  );
}
