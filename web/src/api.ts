// Calls to the server's JSON API. The session cookie rides along; errors
// come back as ApiError with the server's code, field and message.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public field: string | null,
    message: string,
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorized: Listener[] = [];
/** Called when any call answers 401: the session ended. */
export function onUnauthorized(fn: Listener) {
  unauthorized.push(fn);
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return undefined as T;
  let data: any = null;
  const text = await res.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = data?.error ?? {};
    if (res.status === 401 && !path.endsWith('/auth/login')) unauthorized.forEach((f) => f());
    throw new ApiError(res.status, e.code ?? 'http_' + res.status, e.field ?? null,
      e.message ?? `${method} ${path}: HTTP ${res.status}`);
  }
  return data as T;
}

export const get = <T = any>(path: string) => api<T>('GET', path);

/** A query string from the defined entries of params. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? '?' + s : '';
}

export type Role = 'viewer' | 'user' | 'operator' | 'admin';
const rank: Record<Role, number> = { viewer: 1, user: 2, operator: 3, admin: 4 };
/** The caller's role is at least want. */
export const atLeast = (role: Role | undefined, want: Role) => !!role && rank[role] >= rank[want];

export interface Me {
  id: number;
  username: string;
  role: Role;
  method: string;
  must_change_password: boolean;
  /** what a new password must be, shown before it is typed */
  password_rules?: { min_length: number; max_bytes: number };
  /** apps in containers are reachable at /u/OWNER/CONTAINER/PORT/ */
  routes?: boolean;
}

/** A form field refused (by the server, or checked here first): the field's
 * name in the form, and what is wrong in words. */
export const fieldError = (field: string, message: string) => new ApiError(400, 'invalid_field', field, message);

/** A label value quoted for a selector: "x" inside {l="x"}. */
export const selValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

export interface Series {
  labels: Record<string, string>;
  t: number[]; // seconds
  v: (number | null)[];
}

/** /api/v1/query_range (Prometheus's matrix form) as columns per series. */
export async function queryRange(match: string, start: number, end: number, step: number,
  fn = 'avg'): Promise<{ tier: string; series: Series[] }> {
  const r = await get<any>('/api/v1/query_range' + qs({ match, start, end, step, fn }));
  const series = (r.data?.result ?? []).map((s: any) => {
    const n = s.values.length;
    const t = new Array<number>(n), v = new Array<number | null>(n);
    for (let i = 0; i < n; i++) {
      t[i] = s.values[i][0];
      const x = parseFloat(s.values[i][1]);
      v[i] = Number.isFinite(x) ? x : null;
    }
    return { labels: s.metric, t, v };
  });
  return { tier: r.data?.tier ?? '', series };
}
