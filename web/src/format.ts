// Numbers as operators read them.
export const isNum = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

export function bytes(v: number | null | undefined): string {
  if (!isNum(v)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + u[i];
}

export const mib = (v: number | null | undefined) => (isNum(v) ? bytes(v * 1048576) : '–');

export function rate(v: number | null | undefined): string {
  if (!isNum(v)) return '–';
  return bytes(v) + '/s';
}

export const pct = (v: number | null | undefined) => (isNum(v) ? `${Math.round(v)}%` : '–');
export const num = (v: number | null | undefined, unit = '', digits = 0) =>
  isNum(v) ? v.toFixed(digits) + unit : '–';

export function ago(ms: number): string {
  if (!ms) return 'never';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** 45000 -> "45 s", "5 min", "2 h 10 min", "3 d 4 h": how long. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export const time = (ms: number) => (ms ? new Date(ms).toLocaleString() : '–');

/** Threshold class of a value: ok, warn, crit. */
export function level(v: number | null | undefined, warn: number, crit: number): string {
  if (!isNum(v)) return 'na';
  return v >= crit ? 'crit' : v >= warn ? 'warn' : 'ok';
}
