// The fleet as the page holds it: copies of the live worker's state
// (live.worker.ts), which posts every server at a (re)load and then those
// that changed and are watched, at most once per redraw interval.
// Listeners hear once per frame, with the names that changed (null:
// everything). A server nobody watches keeps its shape current (state,
// GPUs) but not its values: what shows values says so with want().
import type { Server, Totals } from './fleet-state';
import type { UtilSample } from './live.worker';

export type { Gpu, HostStats, Server, Totals } from './fleet-state';
export { BUSY, gpusShape, serverShape } from './fleet-state';

type Listener = (changed: Set<string> | null) => void;

class FleetStore {
  servers = new Map<string, Server>();
  /** names sorted, for stable rendering */
  order: string[] = [];
  seq = 0;
  loaded = false;
  /** snapshots loaded so far (the set of servers may have changed) */
  loads = 0;
  totals: Totals = { hosts: 0, online: 0, gpus: 0, busy: 0, power_watts: 0 };
  /** the worker's side (set by live.ts) */
  resyncer: () => Promise<void> = async () => {};
  watcher: (all: boolean, names: string[]) => void = () => {};
  sampler: () => Promise<UtilSample[]> = async () => [];
  private wants = new Map<string, number>();
  private wantsAll = 0;
  private watchQueued = false;
  private listeners = new Set<Listener>();
  private dirty = new Set<string>();
  private all = false;
  private frame = 0;

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Reads the whole fleet again (after a change the caller made), resolved
   * once the page holds it. */
  resync(): Promise<void> {
    return this.resyncer();
  }

  /** Keeps name's values current (all servers' for "*") until the
   * returned function is called. */
  want(name: string): () => void {
    if (name === '*') this.wantsAll++;
    else this.wants.set(name, (this.wants.get(name) ?? 0) + 1);
    this.sendWatch();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (name === '*') this.wantsAll--;
      else {
        const n = (this.wants.get(name) ?? 1) - 1;
        if (n > 0) this.wants.set(name, n);
        else this.wants.delete(name);
      }
      this.sendWatch();
    };
  }

  /** Every online GPU's utilization now. */
  utils(): Promise<UtilSample[]> {
    return this.sampler();
  }

  /** Tells the worker what is watched, once for the changes of this task. */
  sendWatch() {
    if (this.watchQueued) return;
    this.watchQueued = true;
    queueMicrotask(() => {
      this.watchQueued = false;
      this.watcher(this.wantsAll > 0, [...this.wants.keys()]);
    });
  }

  /** One update from the worker. */
  update(full: boolean, servers: Server[], totals: Totals, seq: number) {
    this.totals = totals;
    if (full) {
      this.servers = new Map(servers.map((s) => [s.name, s]));
      this.order = [...this.servers.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
      this.loaded = true;
      this.loads++;
      this.all = true;
    } else {
      for (const s of servers) {
        if (!this.servers.has(s.name)) continue;
        this.servers.set(s.name, s);
        this.dirty.add(s.name);
      }
    }
    this.seq = seq;
    this.schedule();
  }

  private schedule() {
    if (this.frame) return;
    const run = () => {
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
