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

/** The socket: where the connection is. "first" is true until the first
 * hello since start, so a hello after it means a reconnect (what changed
 * while away is only in a snapshot). */
type Conn =
  | { s: 'stopped' }
  | { s: 'connecting'; ws: WebSocket; attempt: number; first: boolean }
  | { s: 'open'; ws: WebSocket }
  | { s: 'waiting'; attempt: number; timer: number };

/** The fleet state against the server's: deltas are held (pending) while a
 * snapshot is on its way, from the page (its first) or from a read of our
 * own; a read asked for during a read reads again ("again": the first may
 * predate the change the asker knows of). */
type Sync =
  | { s: 'unloaded' }
  | { s: 'awaiting-page'; pending: any[] }
  | { s: 'reading'; pending: any[]; again: boolean; done: Promise<void> }
  | { s: 'synced' };

let conn: Conn = { s: 'stopped' };
let sync: Sync = { s: 'unloaded' };

/** What goes to the page: changed servers (dirty), those it does not watch
 * (stale, sent when it does), the shape each had when last sent, and the
 * timing of the next update. */
const out = {
  dirty: new Set<string>(),
  stale: new Set<string>(),
  watchAll: true,
  watched: new Set<string>(),
  sentShape: new Map<string, string>(),
  full: false,
  deltas: 0,
  lastFlush: 0,
  timer: 0,
};

function flush() {
  out.timer = 0;
  out.lastFlush = performance.now();
  const servers: Server[] = [];
  const send = (s: Server) => {
    servers.push(s);
    out.sentShape.set(s.name, serverShape(s));
  };
  if (out.full) {
    out.stale.clear();
    out.sentShape.clear();
    fleet.servers.forEach(send);
  } else {
    out.dirty.forEach((n) => {
      const s = fleet.servers.get(n);
      if (!s) return;
      if (out.watchAll || out.watched.has(n) || out.sentShape.get(n) !== serverShape(s)) send(s);
      else out.stale.add(n);
    });
  }
  post({ t: 'fleet', full: out.full, servers, totals: fleet.totals(), seq: fleet.seq, deltas: out.deltas });
  out.full = false;
  out.dirty = new Set();
  out.deltas = 0;
}

function flushNow() {
  if (out.timer) clearTimeout(out.timer);
  flush();
}

function schedule() {
  if (out.timer) return;
  const wait = out.full ? 0 : flushMs(fleet.servers.size) - (performance.now() - out.lastFlush);
  out.timer = setTimeout(flush, Math.max(0, wait)) as unknown as number;
}

async function fetchFleet(): Promise<any> {
  try {
    return JSON.parse(await readSnapshot());
  } catch (e: any) {
    if (e?.status === 401) post({ t: 'unauthorized' });
    throw e;
  }
}

/** Reads the snapshot (again when asked during a read), then applies the
 * deltas held meanwhile and sends the page everything. */
function resync(): Promise<void> {
  if (sync.s === 'reading') {
    sync.again = true;
    return sync.done;
  }
  const reading: Extract<Sync, { s: 'reading' }> = { s: 'reading', pending: [], again: false, done: Promise.resolve() };
  reading.done = (async () => {
    try {
      do {
        reading.again = false;
        fleet.load(await fetchFleet());
      } while (reading.again);
      sync = { s: 'synced' };
      for (const d of reading.pending) apply(d);
      out.full = true;
      flushNow();
    } finally {
      if ((sync as Sync) === reading) sync = { s: 'synced' }; /* a failed read: go on with what we hold */
    }
  })();
  sync = reading;
  return reading.done;
}

/** The page's first snapshot: it shows it already, so only what changed
 * since (the deltas that came meanwhile) goes back to it. */
function pageSnapshot(text: string | null) {
  if (sync.s !== 'awaiting-page') return; // a read of our own made it old news
  const held = sync.pending;
  try {
    if (text === null) throw new Error('no snapshot');
    fleet.load(JSON.parse(text));
  } catch {
    sync = { s: 'synced' };
    resync().catch(() => {});
    return;
  }
  sync = { s: 'synced' };
  out.sentShape.clear();
  fleet.servers.forEach((s) => out.sentShape.set(s.name, serverShape(s)));
  for (const d of held) apply(d);
}

function apply(d: any) {
  if (sync.s === 'awaiting-page' || sync.s === 'reading') {
    sync.pending.push(d);
    return;
  }
  out.deltas++;
  const r = fleet.apply(d);
  if (r === 'gap') {
    resync().catch(() => {});
    return;
  }
  if (r !== 'changed') return;
  out.dirty.add(d.server);
  out.stale.delete(d.server);
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
    case 'hello': {
      if (conn.s !== 'connecting') break;
      const reconnect = !conn.first;
      conn = { s: 'open', ws: conn.ws };
      setState('live');
      if (reconnect) resync().catch(() => {});
      post({ t: 'event', m });
      break;
    }
    case 'servers':
      resync().catch(() => {});
      break;
    default:
      post({ t: 'event', m });
  }
}

function connect(attempt: number, first: boolean) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${proto}//${location.host}/api/v1/live`);
  conn = { s: 'connecting', ws: sock, attempt, first };
  setState('connecting');
  sock.onmessage = (ev) => message(ev.data);
  sock.onclose = () => {
    if ((conn.s !== 'connecting' && conn.s !== 'open') || conn.ws !== sock) return;
    // 1, 2, 4 ... 30 s with ±20 % jitter so a restarted server is not hit
    // by every tab at once; a connection that opened starts over at 1 s
    const tries = conn.s === 'open' ? 0 : conn.attempt;
    const base = Math.min(30000, 1000 * 2 ** tries);
    const retry = Math.round(base * (0.8 + Math.random() * 0.4));
    conn = { s: 'waiting', attempt: tries + 1, timer: setTimeout(() => connect(tries + 1, false), retry) as unknown as number };
    setState('offline', retry);
  };
}

function stop() {
  const c = conn;
  conn = { s: 'stopped' };
  if (c.s === 'waiting') clearTimeout(c.timer);
  if (c.s === 'connecting' || c.s === 'open') c.ws.close();
}

/** The servers whose values the page shows; what it now watches and
 * missed goes at once. */
function watch(all: boolean, names: string[]) {
  out.watchAll = all;
  out.watched = new Set(names);
  let now = false;
  out.stale.forEach((n) => {
    if (!out.watchAll && !out.watched.has(n)) return;
    out.stale.delete(n);
    out.dirty.add(n);
    now = true;
  });
  if (now) flushNow();
}

scope.onmessage = (ev) => {
  const m = ev.data;
  switch (m.t) {
    case 'start':
      if (conn.s !== 'stopped') return;
      // the snapshot need not wait for the socket: deltas that come before
      // it are held, and one missed in between shows as a gap in seq (which
      // reads the snapshot again). The page reads the first one (it can
      // start before this worker does, and draws it at once).
      sync = { s: 'awaiting-page', pending: [] };
      connect(0, true);
      break;
    case 'snapshot':
      pageSnapshot(m.text);
      break;
    case 'stop':
      stop();
      break;
    case 'watch':
      watch(m.all, m.names);
      break;
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
