// The fleet's live state: the /api/v1/fleet snapshot kept current by the
// deltas /api/v1/live pushes. It runs in the live worker (live.worker.ts),
// which owns the socket, so its objects are changed in place and the page
// gets copies of the servers that changed.
import { emptyHost, GpuValues, HostStats } from './gen/fields';

export type { HostStats } from './gen/fields';

/** A GPU: which one, and its live figures (named by the C table of
 * figures, src/lib/fields.c, through the generated gen/fields.ts). */
export interface Gpu extends GpuValues {
  uuid: string;
  index: number;
  model: string;
}

export interface Server {
  id: number;
  name: string;
  address: string;
  agent_port: number;
  labels: Record<string, string>;
  /** the registry's: online, offline or unknown (the one source) */
  status: string;
  /** when the status began (ms), and why it is offline (plain words) */
  status_since_ms: number;
  last_error: string;
  /** status as a boolean, null when unknown */
  online: boolean | null;
  ts_ms: number;
  host: HostStats;
  gpus: Gpu[];
}

/** % utilization from which a GPU counts as busy */
export const BUSY = 10;

/** The fleet's figures at the top of the overview. */
export interface Totals {
  hosts: number;
  online: number;
  gpus: number;
  busy: number;
  power_watts: number;
}

/** Which GPUs these are (not their values). */
export const gpusShape = (gpus: Gpu[]) => gpus.map((g) => g.uuid + ' ' + g.index + ' ' + g.model).join();

/** What a server's card is made of, apart from its values: a change here
 * reaches the page even for a server it is not watching. */
export const serverShape = (s: Server) => `${s.online} ${s.status} ${s.status_since_ms} ${s.last_error} ${gpusShape(s.gpus)}`;

/** The text of GET /api/v1/fleet (the page's first read and the worker's
 * later ones); a failure carries the HTTP status. */
export async function readSnapshot(): Promise<string> {
  const r = await fetch('/api/v1/fleet', { credentials: 'same-origin' });
  if (!r.ok) throw Object.assign(new Error(`GET /api/v1/fleet: HTTP ${r.status}`), { status: r.status });
  return r.text();
}

/** A server's state as the registry says it (deltas carry its changes). */
const onlineOf = (status: string): boolean | null => (status === 'online' ? true : status === 'offline' ? false : null);

/** What applying a delta did: nothing (older than the state, or of a
 * server not registered), changed a server, or found a delta missing in
 * between (only a fresh snapshot is safe then). */
export type Applied = 'ignored' | 'changed' | 'gap';

export class FleetState {
  servers = new Map<string, Server>();
  seq = 0;
  loaded = false;

  load(snap: any) {
    const m = new Map<string, Server>();
    for (const s of snap.servers ?? []) {
      const live = s.live ?? {};
      m.set(s.name, {
        id: s.id, name: s.name, address: s.address, agent_port: s.agent_port,
        labels: s.labels ?? {}, status: s.status, status_since_ms: s.status_since_ms ?? 0, last_error: s.last_error ?? '',
        online: onlineOf(s.status),
        ts_ms: live.ts_ms ?? 0, host: Object.assign(emptyHost(), live.host ?? {}),
        gpus: (live.gpus ?? []).slice().sort((a: Gpu, b: Gpu) => a.index - b.index),
      });
    }
    this.servers = m;
    this.seq = snap.seq ?? 0;
    this.loaded = true;
  }

  /** One delta of a {"type":"fleet"} message. */
  apply(d: any): Applied {
    if (!(d.seq > this.seq)) return 'ignored';
    if (d.seq !== this.seq + 1 && this.loaded) return 'gap';
    this.seq = d.seq;
    const s = this.servers.get(d.server);
    if (!s) return 'ignored'; // not registered (yet): the next "servers" event resyncs
    if (d.ts_ms !== undefined) s.ts_ms = d.ts_ms;
    if (d.status !== undefined) {
      s.status = d.status;
      s.last_error = d.last_error ?? '';
      s.status_since_ms = d.status_since_ms ?? 0;
      s.online = onlineOf(d.status);
    }
    if (d.host) Object.assign(s.host, d.host);
    if (d.gpus) {
      let added = false;
      for (const g of d.gpus) {
        const old = s.gpus.find((x) => x.uuid === g.uuid);
        if (old) Object.assign(old, g);
        else {
          s.gpus.push(g as Gpu);
          added = true;
        }
      }
      if (added) s.gpus.sort((a, b) => a.index - b.index);
    }
    return 'changed';
  }

  totals(): Totals {
    const t: Totals = { hosts: 0, online: 0, gpus: 0, busy: 0, power_watts: 0 };
    this.servers.forEach((s) => {
      t.hosts++;
      if (s.online) t.online++;
      for (const g of s.gpus) {
        t.gpus++;
        if (typeof g.util_percent === 'number' && g.util_percent >= BUSY) t.busy++;
        if (typeof g.power_watts === 'number' && s.online) t.power_watts += g.power_watts;
      }
    });
    return t;
  }
}
