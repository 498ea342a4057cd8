// Small building blocks the pages share.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, fieldError } from './api';
import { onLinkClick } from './router';

export function Link(p: { href: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' | undefined; title?: string }) {
  return (
    <a href={p.href} class={p.class} onClick={onLinkClick} aria-current={p['aria-current']} title={p.title}>
      {p.children}
    </a>
  );
}

/** Loads once (and again when deps change or reload is called). */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): { data: T | null; error: string; loading: boolean; reload: () => void } {
  const [state, set] = useState<{ data: T | null; error: string; loading: boolean }>({ data: null, error: '', loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    set((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && set({ data, error: '', loading: false }),
      (e) => live && set({ data: null, error: errorText(e), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** "rack=r1, team=vision" -> {rack: "r1", team: "vision"}; a part that is
 * not name=value is refused, naming the field. */
export function parseLabels(text: string, field = 'labels'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw fieldError(field, `"${part}" is not name=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/** The other way: {rack: "r1"} -> "rack=r1". */
export const labelsText = (l: Record<string, string> | undefined) => Object.entries(l ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');

/** The row of an empty table: loading, the error that left it empty, or
 * what empty means there (never a blank table). */
export function EmptyRow(p: { cols: number; of: { data: unknown; loading: boolean; error: string }; n: number; text: string }) {
  if (p.n > 0) return null;
  return (
    <tr class="empty-row"><td colSpan={p.cols} class={p.of.error ? 'error' : 'muted'}>
      {p.of.error || (p.of.loading && !p.of.data ? 'Loading…' : p.text)}
    </td></tr>
  );
}

/** "new_password" -> "New password": a field's name in words, where the
 * form that sent it has no label for it. */
const ACRONYMS: Record<string, string> = { url: 'URL', id: 'ID', gpu: 'GPU', gpus: 'GPUs', cpu: 'CPU', cpus: 'CPUs', uuid: 'UUID', tls: 'TLS' };
export function fieldWords(field: string): string {
  const w = field.replace(/\[\d+\]/g, '').split('.').pop()!.split('_').map((x) => ACRONYMS[x] ?? x).join(' ');
  return w.charAt(0).toUpperCase() + w.slice(1);
}

/** The server's message without the field names it starts with ("new_password:
 * password: at least 10 characters" -> "at least 10 characters"). */
function bareMessage(field: string, message: string): string {
  let m = message, x: RegExpMatchArray | null;
  while ((x = m.match(/^([A-Za-z_][\w.\[\]]*): /)) && (x[1] === field || field.endsWith(x[1]) || field.endsWith('_' + x[1])))
    m = m.slice(x[0].length);
  return m;
}

/** An error in words; label names the field (its form's label) when known. */
export function errorText(e: unknown, label?: (field: string) => string | null): string {
  if (e instanceof ApiError) return e.field ? `${label?.(e.field) ?? fieldWords(e.field)}: ${bareMessage(e.field, e.message)}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

export function ErrorBox({ error }: { error: string }) {
  if (!error) return null;
  return <p class="error" role="alert">{error}</p>;
}

export function Page(p: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${p.title} · gpufleet`;
  }, [p.title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title">{p.title}</h1>
        {p.actions && <div class="actions">{p.actions}</div>}
      </header>
      {p.children}
    </section>
  );
}

/** A form whose submit runs an async action, showing its error. */
export function Form(p: { onSubmit: (data: FormData) => Promise<void>; children: ComponentChildren; label: string; class?: string }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <form
      class={p.class ?? 'form'}
      aria-label={p.label}
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError('');
        const form = e.currentTarget as HTMLFormElement;
        form.querySelectorAll('[aria-invalid]').forEach((x) => x.removeAttribute('aria-invalid'));
        try {
          await p.onSubmit(new FormData(form));
        } catch (err) {
          // a refused field is named as its label says, marked, and focused
          const input = err instanceof ApiError && err.field ? form.querySelector<HTMLElement>(`[name="${CSS.escape(err.field)}"]`) : null;
          setError(errorText(err, () => input?.closest('label')?.querySelector('span')?.textContent ?? null));
          if (input) {
            input.setAttribute('aria-invalid', 'true');
            setTimeout(() => input.focus(), 0); // after the fieldset is enabled again
          }
        } finally {
          setBusy(false);
        }
      }}
    >
      <fieldset disabled={busy}>{p.children}</fieldset>
      <ErrorBox error={error} />
    </form>
  );
}

export function Field(p: { label: string; name: string; type?: string; value?: string; required?: boolean; placeholder?: string; autocomplete?: string; min?: number; max?: number; hint?: string }) {
  return (
    <label class="field">
      <span>{p.label}</span>
      {/* defaultValue: the page re-renders at every fleet update, and a
          value prop would put back what the user is typing over */}
      <input name={p.name} type={p.type ?? 'text'} defaultValue={p.value} required={p.required} placeholder={p.placeholder}
        autocomplete={p.autocomplete} min={p.min} max={p.max} aria-describedby={p.hint ? `hint-${p.name}` : undefined} />
      {p.hint && <small class="hint" id={`hint-${p.name}`}>{p.hint}</small>}
    </label>
  );
}

/** The password rules in words, shown under a new password's field. */
export const passwordHint = (r?: { min_length: number }) =>
  `At least ${r?.min_length ?? 10} characters, and not containing the user name. A phrase of a few words is easy to type and hard to guess.`;

export function Select(p: { label: string; name: string; options: string[]; value?: string }) {
  return (
    <label class="field">
      <span>{p.label}</span>
      {/* the default as the option's selected, not the select's value: a
          value prop would put it back at the next render over the user's pick */}
      <select name={p.name}>
        {p.options.map((o) => <option value={o} selected={o === p.value}>{o}</option>)}
      </select>
    </label>
  );
}

/** A secret shown once, with a copy button. */
export function Secret({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div class="secret" role="status">
      <p>{label} — shown once, copy it now:</p>
      <code data-testid="secret">{value}</code>
      <div class="row">
        <button type="button" onClick={() => navigator.clipboard?.writeText(value)}>Copy</button>
        <button type="button" onClick={onDone}>Done</button>
      </div>
    </div>
  );
}

/** The quick ranges of history charts: name and seconds. */
export const RANGES: [string, number][] = [['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400], ['7d', 604800], ['30d', 2592000]];

/** Seconds of a range's name (an hour for an unknown one). */
export const rangeSeconds = (name: string) => RANGES.find((r) => r[0] === name)?.[1] ?? 3600;

/** seconds -> the value of a datetime-local input (local time) */
const localInput = (s: number) => {
  const d = new Date(s * 1000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};

/** An absolute window, from and to (local time), beside the quick ranges.
 * The inputs are the user's while shown: key it by the window chosen to
 * set them again when another is. */
export function DateRange({ start, end, onPick }: { start: number; end: number; onPick: (start: number, end: number) => void }) {
  const [error, setError] = useState('');
  return (
    <form class="date-range" aria-label="date range" onSubmit={(e) => {
      e.preventDefault();
      const f = new FormData(e.currentTarget as HTMLFormElement);
      const a = Date.parse(String(f.get('from'))) / 1000, b = Date.parse(String(f.get('to'))) / 1000;
      if (!(a > 0) || !(b > 0)) return setError('From and To: a date and a time');
      if (b <= a) return setError('To: after From');
      setError('');
      onPick(Math.floor(a), Math.ceil(b));
    }}>
      <label>From <input type="datetime-local" name="from" defaultValue={localInput(start)} /></label>
      <label>To <input type="datetime-local" name="to" defaultValue={localInput(end)} /></label>
      <button type="submit" class="chip">Show</button>
      {error && <span class="error small" role="alert">{error}</span>}
    </form>
  );
}

/** A chip per quick range; value is pressed unless off (a zoom is shown). */
export function RangeChips({ value, off, onPick }: { value: string; off?: boolean; onPick: (name: string) => void }) {
  return (
    <>
      {RANGES.map(([name]) => {
        const on = value === name && !off;
        return <button type="button" class={on ? 'chip on' : 'chip'} aria-pressed={on} onClick={() => onPick(name)}>{name}</button>;
      })}
    </>
  );
}
