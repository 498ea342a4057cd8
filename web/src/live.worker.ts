// The tab's one WebSocket on /api/v1/live, kept in a worker: receiving a
// big fleet's deltas (tens of KB a second) and merging them costs the page
// nothing. The page hears the connection's state, the alert events, and at
// most one fleet update per redraw interval holding only the servers that
// changed since the last. It never polls; a dropped socket reconnects with
// exponential backoff (and jitter), then resynchronizes. The page says
// which servers it shows (watch): the others' value changes stay here
// until it does, as copying all of a big fleet to the page every second
// was most of what an update cost it.
import { FleetState, readSnapshot, Server, serverShape, Totals } from './fleet-state';

export type LiveState = 'connecting' | 'live' | 'offline';

/** Page -> worker. */
export type ToWorker =
  /** connect; the page reads the first snapshot itself (and sends it) */
  | { t: 'start' }
  /** the snapshot the page read and shows (null: it could not read one) */
  | { t: 'snapshot'; text: string | null }
  | { t: 'stop' }
  | { t: 'resync'; id: number }
  /** the servers whose values the page shows: all, or those named */
  | { t: 'watch'; all: boolean; names: string[] }
  /** every online GPU's utilization now (the heatmap's samples) */
  | { t: 'utils'; id: number };

/** One GPU's utilization at a time: server, GPU uuid, ms, %. */
export type UtilSample = [string, string, number, number];

/** Worker -> page. */
export type FromWorker =
  | { t: 'state'; state: LiveState; retryInMs: number }
  /** the fleet: every server (full) or those changed since the last
   * that the page watches (or whose shape changed); totals over all */
  | { t: 'fleet'; full: boolean; servers: Server[]; totals: Totals; seq: number; deltas: number }
  | { t: 'utils'; id: number; samples: UtilSample[] }
  | { t: 'resynced'; id: number; error?: string }
  /** an API call answered 401: the session ended */
  | { t: 'unauthorized' }
  /** any other message of the socket (hello, alert, alert_ack) */
  | { t: 'event'; m: any };

const scope = self as unknown as { postMessage(m: FromWorker): void; onmessage: ((ev: MessageEvent<ToWorker>) => void) | null };
const post = (m: FromWorker) => scope.postMessage(m);

/** Least time between two updates posted to the page: at once for a few
 * hosts, growing with the fleet to once a second at 100 hosts (each host
 * reports about once a second, so one redraw then covers the fleet). */
const flushMs = (hosts: number) => Math.min(1000, Math.max(16, hosts * 10));

const fleet = new FleetState();
let ws: WebSocket | null = null;
let stopped = true;
let attempt = 0;
let retryTimer = 0;
let fresh = false; // started, the snapshot already asked for

// deltas while a snapshot loads wait for it; reading again if asked during
// a read (the first may predate the change the asker knows of)
let pending: any[] | null = null;
let reading: Promise<void> | null = null;
let again = false;
/** the page's first snapshot is on its way (a read of our own since
 * makes it old news) */
let awaitingPage = false;

let dirty = new Set<string>();
/** changed servers the page does not watch, sent when it does */
let stale = new Set<string>();
let watchAll = true;
let watched = new Set<string>();
/** the shape of each server as the page last got it */
const sentShape = new Map<string, string>();
let full = false;
let deltas = 0;
let lastFlush = 0;
let flushTimer = 0;

function flush() {
  flushTimer = 0;
  lastFlush = performance.now();
  const servers: Server[] = [];
  const send = (s: Server) => {
    servers.push(s);
    sentShape.set(s.name, serverShape(s));
  };
  if (full) {
    stale.clear();
    sentShape.clear();
    fleet.servers.forEach(send);
  } else {
    dirty.forEach((n) => {
      const s = fleet.servers.get(n);
      if (!s) return;
      if (watchAll || watched.has(n) || sentShape.get(n) !== serverShape(s)) send(s);
      else stale.add(n);
    });
  }
  post({ t: 'fleet', full, servers, totals: fleet.totals(), seq: fleet.seq, deltas });
  full = false;
  dirty = new Set();
  deltas = 0;
}

function schedule() {
  if (flushTimer) return;
  const wait = full ? 0 : flushMs(fleet.servers.size) - (performance.now() - lastFlush);
  flushTimer = setTimeout(flush, Math.max(0, wait)) as unknown as number;
}

async function fetchFleet(): Promise<any> {
  try {
    return JSON.parse(await readSnapshot());
  } catch (e: any) {
    if (e?.status === 401) post({ t: 'unauthorized' });
    throw e;
  }
}

function resync(): Promise<void> {
  if (reading) {
    again = true;
    return reading;
  }
  pending = [];
  awaitingPage = false;
  reading = (async () => {
    try {
      do {
        again = false;
        fleet.load(await fetchFleet());
      } while (again);
      const queued = pending ?? [];
      pending = null;
      for (const d of queued) apply(d);
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = 0;
      full = true;
      flush();
    } finally {
      pending = null;
      reading = null;
    }
  })();
  return reading;
}

/** The page's first snapshot: it shows it already, so only what changed
 * since (the deltas that came meanwhile) goes back to it. */
function pageSnapshot(text: string | null) {
  if (!awaitingPage) return;
  awaitingPage = false;
  if (text === null) {
    pending = null;
    resync().catch(() => {});
    return;
  }
  try {
    fleet.load(JSON.parse(text));
  } catch {
    pending = null;
    resync().catch(() => {});
    return;
  }
  sentShape.clear();
  fleet.servers.forEach((s) => sentShape.set(s.name, serverShape(s)));
  const queued = pending ?? [];
  pending = null;
  for (const d of queued) apply(d);
}

function apply(d: any) {
  if (pending) {
    pending.push(d);
    return;
  }
  deltas++;
  const r = fleet.apply(d);
  if (r === 'gap') {
    resync().catch(() => {});
    return;
  }
  if (r !== 'changed') return;
  dirty.add(d.server);
  stale.delete(d.server);
  schedule();
}

function setState(state: LiveState, retryInMs = 0) {
  post({ t: 'state', state, retryInMs });
}

function message(text: string) {
  let m: any;
  try {
    m = JSON.parse(text);
  } catch {
    return;
  }
  switch (m.type) {
    case 'fleet':
      for (const d of m.deltas ?? []) apply(d);
      break;
    case 'hello':
      attempt = 0;
      setState('live');
      // a reconnect: what changed while away is only in the snapshot
      if (!fresh) resync().catch(() => {});
      fresh = false;
      post({ t: 'event', m });
      break;
    case 'servers':
      resync().catch(() => {});
      break;
    default:
      post({ t: 'event', m });
  }
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${proto}//${location.host}/api/v1/live`);
  ws = sock;
  setState('connecting');
  sock.onmessage = (ev) => message(ev.data);
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    if (stopped) return;
    // 1, 2, 4 ... 30 s with ±20 % jitter so a restarted server is not hit
    // by every tab at once
    const base = Math.min(30000, 1000 * 2 ** attempt++);
    const retry = Math.round(base * (0.8 + Math.random() * 0.4));
    setState('offline', retry);
    retryTimer = setTimeout(connect, retry) as unknown as number;
  };
}

scope.onmessage = (ev) => {
  const m = ev.data;
  switch (m.t) {
    case 'start':
      if (!stopped) return;
      stopped = false;
      connect();
      // the snapshot need not wait for the socket: deltas that come
      // before it are kept, and one missed in between shows as a gap in
      // seq (which reads the snapshot again). The page reads the first one
      // (it can start before this worker does, and draws it at once).
      fresh = true;
      awaitingPage = true;
      pending = [];
      break;
    case 'snapshot':
      pageSnapshot(m.text);
      break;
    case 'stop':
      stopped = true;
      clearTimeout(retryTimer);
      ws?.close();
      ws = null;
      break;
    case 'watch': {
      watchAll = m.all;
      watched = new Set(m.names);
      // what it now watches and missed: at once
      let now = false;
      stale.forEach((n) => {
        if (!watchAll && !watched.has(n)) return;
        stale.delete(n);
        dirty.add(n);
        now = true;
      });
      if (now) {
        if (flushTimer) clearTimeout(flushTimer);
        flushTimer = 0;
        flush();
      }
      break;
    }
    case 'utils': {
      const samples: UtilSample[] = [];
      fleet.servers.forEach((s) => {
        if (s.online) for (const g of s.gpus) if (typeof g.util_percent === 'number') samples.push([s.name, g.uuid, s.ts_ms, g.util_percent]);
      });
      post({ t: 'utils', id: m.id, samples });
      break;
    }
    case 'resync':
      resync().then(() => post({ t: 'resynced', id: m.id }), (e) => post({ t: 'resynced', id: m.id, error: String(e?.message ?? e) }));
      break;
  }
};
