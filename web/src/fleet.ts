// The fleet as the browser holds it: the /api/v1/fleet snapshot, kept
// current by the deltas /api/v1/live pushes. Changed servers get new
// objects (unchanged ones keep theirs), and listeners hear once per frame.
import { get } from './api';

export interface Gpu {
  uuid: string;
  index: number;
  model: string;
  util: number | null;
  mem_util: number | null;
  fb_used_mib: number | null;
  fb_total_mib: number | null;
  temp_c: number | null;
  mem_temp_c: number | null;
  power_w: number | null;
  power_limit_w: number | null;
  sm_clock_mhz: number | null;
  mem_clock_mhz: number | null;
  pcie_tx_kbps: number | null;
  pcie_rx_kbps: number | null;
}

export interface HostStats {
  cpu_percent: number | null;
  mem_used_bytes: number | null;
  mem_total_bytes: number | null;
  disk_used_bytes: number | null;
  disk_total_bytes: number | null;
  net_rx_bps: number | null;
  net_tx_bps: number | null;
  load1: number | null;
}

export interface Server {
  id: number;
  name: string;
  address: string;
  agent_port: number;
  labels: Record<string, string>;
  status: string;
  last_error: string;
  online: boolean | null;
  ts_ms: number;
  host: HostStats;
  gpus: Gpu[];
}

type Listener = (changed: Set<string> | null) => void;

/** Least time between two redraws of fleet changes: a frame for a few
 * hosts, growing with the fleet to once a second at 100 hosts (each host
 * reports about once a second, so one redraw then covers the fleet). */
const flushMs = (hosts: number) => Math.min(1000, Math.max(16, hosts * 10));

const emptyHost: HostStats = {
  cpu_percent: null, mem_used_bytes: null, mem_total_bytes: null, disk_used_bytes: null,
  disk_total_bytes: null, net_rx_bps: null, net_tx_bps: null, load1: null,
};

class FleetStore {
  servers = new Map<string, Server>();
  /** names sorted, for stable rendering */
  order: string[] = [];
  seq = 0;
  loaded = false;
  /** snapshots loaded so far (the set of servers may have changed) */
  loads = 0;
  private listeners = new Set<Listener>();
  private pending: any[] | null = null; // deltas that came while a snapshot loads
  private reading: Promise<void> | null = null;
  private again = false;
  private dirty = new Set<string>();
  private all = false;
  private frame = 0;

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Reads the whole fleet again; deltas arriving meanwhile are kept and
   * applied after it. A call during a read makes one more read follow it
   * (the first may predate the change the caller knows of). */
  resync(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.pending = [];
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          const snap = await get<any>('/api/v1/fleet');
          this.load(snap);
        } while (this.again);
        const queued = this.pending ?? [];
        this.pending = null;
        for (const d of queued) this.apply(d);
      } finally {
        this.pending = null;
        this.reading = null;
      }
    })();
    return this.reading;
  }

  load(snap: any) {
    const m = new Map<string, Server>();
    for (const s of snap.servers) {
      const live = s.live ?? {};
      m.set(s.name, {
        id: s.id, name: s.name, address: s.address, agent_port: s.agent_port,
        labels: s.labels ?? {}, status: s.status, last_error: s.last_error ?? '',
        online: live.online ?? (s.status === 'online' ? true : s.status === 'offline' ? false : null),
        ts_ms: live.ts_ms ?? 0, host: { ...emptyHost, ...(live.host ?? {}) },
        gpus: (live.gpus ?? []).slice().sort((a: Gpu, b: Gpu) => a.index - b.index),
      });
    }
    this.servers = m;
    this.order = [...m.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    this.seq = snap.seq;
    this.loaded = true;
    this.loads++;
    this.all = true;
    this.schedule();
  }

  /** One {"type":"fleet"} message. */
  apply(d: any) {
    if (this.pending) {
      this.pending.push(d);
      return;
    }
    if (d.seq <= this.seq) return;
    if (d.seq !== this.seq + 1 && this.loaded) {
      // a delta went missing: the snapshot is the only safe state
      this.resync().catch(() => {});
      return;
    }
    this.seq = d.seq;
    const old = this.servers.get(d.server);
    if (!old) return; // not registered (yet): the next "servers" event resyncs
    const s: Server = { ...old, ts_ms: d.ts_ms };
    if (d.online !== undefined) s.online = d.online;
    if (d.host) s.host = { ...old.host, ...d.host };
    if (d.gpus) {
      const gpus = old.gpus.slice();
      for (const g of d.gpus) {
        const i = gpus.findIndex((x) => x.uuid === g.uuid);
        if (i >= 0) gpus[i] = { ...gpus[i], ...g };
        else gpus.push(g as Gpu);
      }
      if (gpus.length !== old.gpus.length) gpus.sort((a, b) => a.index - b.index);
      s.gpus = gpus;
    }
    this.servers.set(d.server, s);
    this.dirty.add(d.server);
    this.schedule();
  }

  private lastFlush = 0;

  private schedule() {
    if (this.frame) return;
    const run = () => {
      // deltas of a big fleet arrive spread over each second: drawing
      // them a few times a second, not at every frame, saves the fixed
      // cost of each (style, layout, paint) many times over
      const wait = flushMs(this.order.length) - (performance.now() - this.lastFlush);
      if (wait > 0 && !this.all) {
        this.frame = window.setTimeout(run, wait);
        return;
      }
      this.lastFlush = performance.now();
      this.frame = 0;
      const changed = this.all ? null : this.dirty;
      this.all = false;
      this.dirty = new Set();
      this.listeners.forEach((fn) => fn(changed));
    };
    // a hidden tab gets no animation frames: deliver on a timer there
    this.frame = document.hidden ? window.setTimeout(run, 250) : requestAnimationFrame(run);
  }
}

export const fleet = new FleetStore();

/** The key of a GPU across the fleet. */
export const gpuKey = (server: string, uuid: string) => server + '\u0000' + uuid;
