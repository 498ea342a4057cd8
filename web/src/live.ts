// One WebSocket per tab on /api/v1/live: fleet deltas, registry changes and
// alert events. It never polls; when the socket drops it says so and
// reconnects with exponential backoff (and jitter), then resynchronizes.
import { get } from './api';
import { fleet } from './fleet';

export type LiveState = 'connecting' | 'live' | 'offline';

export interface Alert {
  id: number;
  rule: string;
  state: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number;
  ack_by?: string;
  active_ms?: number;
  fired_ms?: number;
}

type Fn = () => void;

class Live {
  state: LiveState = 'connecting';
  deltas = 0; // fleet messages received (bench/ui.sh reads it)
  retryInMs = 0;
  alerts = new Map<number, Alert>(); // pending and firing
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer = 0;
  private stopped = true;
  private fresh = false; // started, the snapshot already asked for
  private listeners = new Set<Fn>();

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

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
    // the snapshot need not wait for the socket: deltas that come before it
    // are kept, and one missed in between shows as a gap in seq (which
    // reads the snapshot again)
    this.fresh = true;
    fleet.resync().catch(() => {});
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }

  private connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/live`);
    this.ws = ws;
    this.state = 'connecting';
    this.emit();
    ws.onmessage = (ev) => this.message(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.state = 'offline';
      if (this.stopped) return;
      // 1, 2, 4 ... 30 s with ±20 % jitter so a restarted server is not
      // hit by every tab at once
      const base = Math.min(30000, 1000 * 2 ** this.attempt++);
      this.retryInMs = Math.round(base * (0.8 + Math.random() * 0.4));
      this.emit();
      // a closed session shows as a closed socket: the 401 here sends the
      // app back to its login page
      get('/api/v1/auth/me').catch(() => {});
      this.timer = window.setTimeout(() => this.connect(), this.retryInMs);
    };
  }

  private message(text: string) {
    let m: any;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    switch (m.type) {
      case 'fleet':
        for (const d of m.deltas ?? []) {
          this.deltas++;
          fleet.apply(d);
        }
        break;
      case 'hello':
        this.attempt = 0;
        this.state = 'live';
        this.emit();
        // a reconnect: what changed while away is only in the snapshot
        if (!this.fresh) fleet.resync().catch(() => {});
        this.fresh = false;
        this.loadAlerts();
        break;
      case 'servers':
        fleet.resync().catch(() => {});
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
      case 'alert_ack': {
        const a = this.alerts.get(m.id);
        if (a) this.alerts.set(m.id, { ...a, ack_by: m.by });
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
