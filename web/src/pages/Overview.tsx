// The fleet at a glance: totals, a card per host with a tile per GPU, a
// filter, and the utilization heatmap of the last hour.
import { memo } from 'preact/compat';
import { useEffect, useRef, useState } from 'preact/hooks';
import { fleet, Server } from '../fleet';
import { bytes, isNum, pct, rate } from '../format';
import { GpuTiles } from '../tiles';
import { live } from '../live';
import { Link, Page } from '../ui';
import { Heatmap } from './Heatmap';

/** Re-renders on every fleet change (once per frame at most). */
export function useFleet(): number {
  const [v, set] = useState(0);
  useEffect(() => fleet.subscribe(() => set((n) => n + 1)), []);
  return v;
}

export function useLive(): number {
  const [v, set] = useState(0);
  useEffect(() => live.subscribe(() => set((n) => n + 1)), []);
  return v;
}

const BUSY = 10; // % utilization that counts a GPU as busy

// One observer for every card: a card off screen does not draw its
// updates (it catches up when it comes into view), so a fleet update costs
// the cards in view, not all of them.
const onView = new Map<Element, (visible: boolean) => void>();
const viewer = new IntersectionObserver((entries) => {
  for (const e of entries) onView.get(e.target)?.(e.isIntersecting);
}, { rootMargin: '40px' });

/** A host's card; it follows its own server's updates. */
export const HostCard = memo(function HostCard({ name }: { name: string }) {
  const el = useRef<HTMLElement>(null);
  const [, redraw] = useState(0);
  const view = useRef({ visible: true, stale: false });
  useEffect(() => {
    const node = el.current!;
    onView.set(node, (visible) => {
      view.current.visible = visible;
      if (visible && view.current.stale) {
        view.current.stale = false;
        redraw((n) => n + 1);
      }
    });
    viewer.observe(node);
    const off = fleet.subscribe((changed) => {
      if (changed && !changed.has(name)) return;
      if (view.current.visible) redraw((n) => n + 1);
      else view.current.stale = true;
    });
    return () => {
      off();
      viewer.unobserve(node);
      onView.delete(node);
    };
  }, [name]);
  const s = fleet.servers.get(name);
  if (!s) return null;
  const h = s.host;
  const state = s.online === true ? 'online' : s.online === false ? 'offline' : 'unknown';
  const memPct = isNum(h.mem_used_bytes) && isNum(h.mem_total_bytes) ? (100 * h.mem_used_bytes) / h.mem_total_bytes : null;
  const diskPct = isNum(h.disk_used_bytes) && isNum(h.disk_total_bytes) ? (100 * h.disk_used_bytes) / h.disk_total_bytes : null;
  return (
    <article ref={el as any} class={`card host ${state}`} aria-label={`host ${s.name}`} data-host={s.name}>
      <header>
        <Link href={`/hosts/${encodeURIComponent(s.name)}`}><h2>{s.name}</h2></Link>
        <span class={`badge ${state}`}>{state}</span>
      </header>
      <dl class="host-stats">
        <div><dt>CPU</dt><dd>{pct(h.cpu_percent)}</dd></div>
        <div><dt>Memory</dt><dd title={`${bytes(h.mem_used_bytes)} of ${bytes(h.mem_total_bytes)}`}>{pct(memPct)}</dd></div>
        <div><dt>Disk</dt><dd title={`${bytes(h.disk_used_bytes)} of ${bytes(h.disk_total_bytes)}`}>{pct(diskPct)}</dd></div>
        <div><dt>Net</dt><dd>↓{rate(h.net_rx_bps)} ↑{rate(h.net_tx_bps)}</dd></div>
      </dl>
      {Object.keys(s.labels).length > 0 && (
        <p class="labels">{Object.entries(s.labels).map(([k, v]) => <span class="label">{k}={v}</span>)}</p>
      )}
      {s.gpus.length > 0 ? <GpuTiles server={s.name} gpus={s.gpus} />
        : <p class="muted">{s.online === false ? s.last_error || 'unreachable' : 'no GPUs reported'}</p>}
    </article>
  );
});

function matches(s: Server, q: string, state: string): boolean {
  if (state === 'online' && s.online !== true) return false;
  if (state === 'offline' && s.online === true) return false;
  if (state === 'idle' && !s.gpus.some((g) => isNum(g.util) && g.util < BUSY)) return false;
  if (!q) return true;
  if (s.name.toLowerCase().includes(q)) return true;
  for (const [k, v] of Object.entries(s.labels))
    if (`${k}=${v}`.toLowerCase().includes(q) || v.toLowerCase().includes(q)) return true;
  return s.gpus.some((g) => g.model.toLowerCase().includes(q) || g.uuid.toLowerCase().includes(q));
}

function Totals() {
  useFleet();
  useLive();
  let hosts = 0, online = 0, gpus = 0, busy = 0, power = 0;
  for (const name of fleet.order) {
    const s = fleet.servers.get(name)!;
    hosts++;
    if (s.online) online++;
    for (const g of s.gpus) {
      gpus++;
      if (isNum(g.util) && g.util >= BUSY) busy++;
      if (isNum(g.power_w) && s.online) power += g.power_w;
    }
  }
  const firing = live.firing;
  return (
    <dl class="totals" aria-label="fleet totals">
      <div><dt>Hosts online</dt><dd data-testid="hosts-online">{online} / {hosts}</dd></div>
      <div><dt>GPUs busy</dt><dd data-testid="gpus-busy">{busy} / {gpus}</dd></div>
      <div><dt>GPUs idle</dt><dd>{gpus - busy}</dd></div>
      <div><dt>Power draw</dt><dd data-testid="power">{power >= 10000 ? (power / 1000).toFixed(1) + ' kW' : power.toFixed(0) + ' W'}</dd></div>
      <div class={firing ? 'alerting' : ''}><dt>Alerts firing</dt><dd><Link href="/alerts">{firing}</Link></dd></div>
    </dl>
  );
}

let drawnMarked = false;

/** Re-renders when servers come or go (a snapshot), or at every update
 * when asked to (a filter on values). */
function useFleetShape(everyUpdate: boolean) {
  const [, set] = useState(0);
  const last = useRef('');
  useEffect(() => fleet.subscribe((changed) => {
    let gpus = 0;
    for (const srv of fleet.servers.values()) gpus += srv.gpus.length;
    const shape = `${fleet.loads} ${gpus}`;
    if (!everyUpdate && changed && shape === last.current) return;
    last.current = shape;
    set((n) => n + 1);
  }), [everyUpdate]);
}

export function Overview() {
  useEffect(() => {
    // for bench/ui.sh: when the first overview with the fleet in it is painted
    if (drawnMarked || !fleet.loaded) return;
    drawnMarked = true;
    requestAnimationFrame(() => performance.mark('gf:overview-drawn'));
  });
  const [q, setQ] = useState(() => new URLSearchParams(location.search).get('q') ?? '');
  const [state, setState] = useState('all');
  const needle = q.trim().toLowerCase();
  useFleetShape(needle !== '' || state !== 'all');
  const shown = fleet.order.map((n) => fleet.servers.get(n)!).filter((s) => matches(s, needle, state));
  useEffect(() => {
    const u = new URL(location.href);
    if (needle) u.searchParams.set('q', q);
    else u.searchParams.delete('q');
    history.replaceState(null, '', u.pathname + u.search);
  }, [needle]);
  return (
    <Page title="Fleet">
      <Totals />
      <div class="filters" role="search">
        <label class="field grow">
          <span>Filter</span>
          <input type="search" value={q} placeholder="host, label (rack=r1) or GPU model" onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Show</span>
          <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
            <option value="all">all hosts</option>
            <option value="online">online</option>
            <option value="offline">offline</option>
            <option value="idle">with idle GPUs</option>
          </select>
        </label>
      </div>
      {!fleet.loaded && <p class="muted">Loading the fleet…</p>}
      {fleet.loaded && fleet.order.length === 0 && (
        <p class="empty">No servers yet. <Link href="/servers">Add one</Link> and start its agent.</p>
      )}
      <div class="hosts" data-testid="hosts">
        {shown.map((s) => <HostCard key={s.name} name={s.name} />)}
      </div>
      {fleet.order.length > 0 && <Heatmap names={shown.map((s) => s.name)} shape={shown.map((s) => `${s.name}:${s.gpus.length}`).join()} />}
    </Page>
  );
}
