// The page's side of the live connection: the socket itself lives in a
// worker (live.worker.ts); here are its state for the header, the fleet
// updates handed to the fleet store, and the alerts (pending and firing).
import { get } from './api';
import { fleet } from './fleet';
import { FleetState, readSnapshot } from './fleet-state';
import type { FromWorker, LiveState, ToWorker, UtilSample } from './live.worker';

export type { LiveState } from './live.worker';

export interface Alert {
  id: number;
  rule: string;
  state: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number;
  ack_by?: string;
  ack_ms?: number;
  ack_comment?: string;
  active_ms?: number;
  fired_ms?: number;
}

type Fn = () => void;

class Live {
  state: LiveState = 'connecting';
  deltas = 0; // fleet deltas received (bench/ui.sh reads it)
  retryInMs = 0;
  alerts = new Map<number, Alert>(); // pending and firing
  containersSeq = 0; // bumped when the server says a container changed
  appsSeq = 0; // counts the apps' updates pushed
  /** Each app's latest pushed state (null: removed), with the count at it. */
  appUpdates = new Map<string, { seq: number; app: any | null }>();
  fleetApplySeq = 0; // bumped at every step of a fleet apply
  private worker: Worker | null = null;
  private listeners = new Set<Fn>();
  private resyncs = new Map<number, { ok: Fn; fail: (e: Error) => void }>();
  private samples = new Map<number, (s: UtilSample[]) => void>();
  private nextId = 1;
  private prefetched: { at: number; text: Promise<string> } | null = null;

  constructor() {
    fleet.resyncer = () => this.resync();
    fleet.watcher = (all, names) => this.send({ t: 'watch', all, names });
    fleet.sampler = () => this.sample();
  }

  subscribe(fn: Fn): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit() {
    this.listeners.forEach((f) => f());
  }

  get firing(): number {
    let n = 0;
    this.alerts.forEach((a) => (n += a.state === 'firing' ? 1 : 0));
    return n;
  }

  private send(m: ToWorker) {
    this.worker?.postMessage(m);
  }

  /** Starts reading the fleet snapshot before the app knows it is signed
   * in (a round trip less to the first drawn overview). */
  prefetch() {
    this.prefetched = { at: performance.now(), text: readSnapshot() };
    this.prefetched.text.catch(() => {});
  }

  start() {
    if (!this.worker) {
      this.worker = new Worker(new URL('./live.worker.ts', import.meta.url), { type: 'module' });
      this.worker.onmessage = (ev: MessageEvent<FromWorker>) => this.message(ev.data);
      fleet.sendWatch(); // a new worker watches everything until told
    }
    this.send({ t: 'start' });
    // the first snapshot is read and drawn here, then handed to the worker
    const p = this.prefetched && performance.now() - this.prefetched.at < 5000 ? this.prefetched.text : readSnapshot();
    this.prefetched = null;
    const loads = fleet.loads;
    p.catch(() => readSnapshot()).then((text) => {
      // the worker read a newer one meanwhile (the registry changed)
      if (fleet.loads !== loads) return;
      const st = new FleetState();
      st.load(JSON.parse(text));
      fleet.update(true, [...st.servers.values()], st.totals(), st.seq);
      this.send({ t: 'snapshot', text });
    }).catch(() => this.send({ t: 'snapshot', text: null }));
  }

  stop() {
    this.send({ t: 'stop' });
  }

  private resync(): Promise<void> {
    if (!this.worker) return Promise.resolve();
    const id = this.nextId++;
    return new Promise((ok, fail) => {
      this.resyncs.set(id, { ok, fail });
      this.send({ t: 'resync', id });
    });
  }

  private sample(): Promise<UtilSample[]> {
    if (!this.worker) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((ok) => {
      this.samples.set(id, ok);
      this.send({ t: 'utils', id });
    });
  }

  private message(m: FromWorker) {
    switch (m.t) {
      case 'fleet':
        this.deltas += m.deltas;
        fleet.update(m.full, m.servers, m.totals, m.seq);
        break;
      case 'utils':
        this.samples.get(m.id)?.(m.samples);
        this.samples.delete(m.id);
        break;
      case 'state':
        this.state = m.state;
        this.retryInMs = m.retryInMs;
        this.emit();
        // a closed session shows as a closed socket: the 401 here sends
        // the app back to its login page
        if (m.state === 'offline') get('/api/v1/auth/me').catch(() => {});
        break;
      case 'unauthorized':
        get('/api/v1/auth/me').catch(() => {});
        break;
      case 'resynced': {
        const r = this.resyncs.get(m.id);
        this.resyncs.delete(m.id);
        if (m.error) r?.fail(new Error(m.error));
        else r?.ok();
        break;
      }
      case 'event':
        this.event(m.m);
        break;
    }
  }

  private event(m: any) {
    switch (m.type) {
      case 'hello':
        this.loadAlerts();
        break;
      case 'alert':
        if (m.state === 'pending' || m.state === 'firing') {
          const old = this.alerts.get(m.id);
          this.alerts.set(m.id, { ...old, ...m });
        } else {
          this.alerts.delete(m.id);
        }
        this.emit();
        break;
      case 'containers':
        this.containersSeq++;
        this.emit();
        break;
      case 'apps':
        for (const a of m.apps ?? []) this.appUpdates.set(a.name, { seq: ++this.appsSeq, app: a });
        for (const n of m.removed ?? []) this.appUpdates.set(n, { seq: ++this.appsSeq, app: null });
        this.emit();
        break;
      case 'fleet_apply':
        this.fleetApplySeq++;
        this.emit();
        break;
      case 'alert_ack':
      case 'alert_unack': {
        const a = this.alerts.get(m.id);
        const ack = m.type === 'alert_ack';
        if (a) this.alerts.set(m.id, { ...a, ack_by: ack ? m.by : '', ack_comment: ack ? m.comment : '', ack_ms: ack ? m.ts_ms : 0 });
        this.emit();
        break;
      }
    }
  }

  private async loadAlerts() {
    try {
      const r = await get<{ alerts: Alert[] }>('/api/v1/alerts?state=active');
      this.alerts = new Map(r.alerts.map((a) => [a.id, a]));
      this.emit();
    } catch {
      /* shown as no alerts; the next event or reconnect fills in */
    }
  }
}

export const live = new Live();
