// The fleet at a glance: totals, a card per host with a tile per GPU, a
// filter, and the utilization heatmap of the last hour.
import { memo } from 'preact/compat';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { BUSY, fleet, gpusShape, Server, serverShape } from '../fleet';
import { isNum } from '../format';
import { GpuTiles, NEAR_PX, paintTiles, setNear } from '../tiles';
import { useFleet, useLive, useWant } from '../hooks';
import { live } from '../live';
import { Link, Page } from '../ui';
import { Heatmap } from './Heatmap';
import { heldText, useHolders } from '../holders';
import { OfflineNote } from '../offline';

// One observer for every card: a card off screen gets no values from the
// live worker and draws nothing (it catches up when it comes near), so a
// fleet update costs the cards in view, not all of them.
const onView = new Map<Element, (visible: boolean) => void>();
let observer: IntersectionObserver | null = null;
/** Made at the first card, not when the module loads. */
const viewer = () => (observer ??= new IntersectionObserver((entries) => {
  for (const e of entries) onView.get(e.target)?.(e.isIntersecting);
}, { rootMargin: `${NEAR_PX}px` }));

/** What a host card renders; anything else of a server changes only
 * values, painted by paintCard without rendering. */
const cardShape = (s: Server) => `${serverShape(s)} ${JSON.stringify(s.labels)}`;

/** The values of a rendered card: the host's figures and its GPU tiles. */
function paintCard(card: HTMLElement, s: Server) {
  const tiles = card.querySelector<HTMLElement>('.gpu-tiles');
  if (tiles) paintTiles(tiles, s.gpus, s.host);
}

/** A host's card; it follows its own server's updates. Preact renders its
 * structure (name, state, labels, the GPUs it has); the values that change
 * every second are painted straight into the DOM and the tiles' canvas,
 * as diffing the card for them cost most of an update. */
export const HostCard = memo(function HostCard({ name, held }: { name: string; held?: string }) {
  const el = useRef<HTMLElement>(null);
  const [, redraw] = useState(0);
  const view = useRef({ visible: true, stale: false, shape: '' });
  useEffect(() => {
    const node = el.current!;
    const update = () => {
      const s = fleet.servers.get(name);
      if (!s || cardShape(s) !== view.current.shape) redraw((n) => n + 1);
      else paintCard(node, s);
    };
    let unwant: (() => void) | null = null;
    onView.set(node, (visible) => {
      view.current.visible = visible;
      // the worker sends values only of the cards in view
      if (visible && !unwant) unwant = fleet.want(name);
      if (!visible && unwant) {
        unwant();
        unwant = null;
      }
      if (visible && view.current.stale) {
        view.current.stale = false;
        update();
      }
      const tiles = node.querySelector<HTMLElement>('.gpu-tiles');
      if (tiles) setNear(tiles, visible);
    });
    viewer().observe(node);
    const off = fleet.subscribe((changed) => {
      if (changed && !changed.has(name)) return;
      if (view.current.visible) update();
      else view.current.stale = true;
    });
    return () => {
      off();
      unwant?.();
      viewer().unobserve(node);
      onView.delete(node);
    };
  }, [name]);
  const s = fleet.servers.get(name);
  const latest = useCallback(() => {
    const now = fleet.servers.get(name);
    return now ? { gpus: now.gpus, host: now.host } : null;
  }, [name]);
  useLayoutEffect(() => {
    if (s && el.current) paintCard(el.current, s);
  });
  if (!s) return null;
  view.current.shape = cardShape(s);
  const state = s.online === true ? 'online' : s.online === false ? 'offline' : 'unknown';
  return (
    <article ref={el as any} class={`card host ${state}`} aria-label={`host ${s.name}`} data-host={s.name}>
      <header>
        <Link href={`/hosts/${encodeURIComponent(s.name)}`}><h2>{s.name}</h2></Link>
        <span class={`badge ${state}`}>{state}</span>
      </header>
      {Object.keys(s.labels).length > 0 && (
        <p class="labels">{Object.entries(s.labels).map(([k, v]) => <span class="label">{k}={v}</span>)}</p>
      )}
      <CardTiles server={s.name} gpus={s.gpus} host={s.host} latest={latest} lazy />
      {held && <p class="held small" aria-label={`GPUs held on ${s.name}`}>Held: {held}</p>}
      <OfflineNote s={s} />
      {s.gpus.length === 0 && s.online === true && <p class="muted">No GPUs reported (no NVIDIA driver on this host?).</p>}
    </article>
  );
});

/** The figures and tiles of a card: rendered again only when its GPUs are
 * other ones (paintCard draws their values). */
const CardTiles = memo(GpuTiles, (a, b) => a.server === b.server && gpusShape(a.gpus) === gpusShape(b.gpus));

/** About how many host cards fill the window (cards are at least 420 px
 * wide and about 250 px tall), and a row more. */
function firstScreen(): number {
  const cols = Math.max(1, Math.floor(window.innerWidth / 430)), rows = Math.ceil(window.innerHeight / 250) + 1;
  return cols * rows;
}

/** A card's place, with its name, for the moment until the rest of the
 * first overview is rendered (see Overview); then the card replaces it. */
function CardPlaceholder({ name }: { name: string }) {
  return (
    <article class="card host placeholder" aria-label={`host ${name}`} aria-busy="true">
      <header><h2>{name}</h2></header>
    </article>
  );
}

function matches(s: Server, q: string, state: string): boolean {
  if (state === 'online' && s.online !== true) return false;
  if (state === 'offline' && s.online === true) return false;
  if (state === 'idle' && !s.gpus.some((g) => isNum(g.util_percent) && g.util_percent < BUSY)) return false;
  if (!q) return true;
  if (s.name.toLowerCase().includes(q)) return true;
  for (const [k, v] of Object.entries(s.labels))
    if (`${k}=${v}`.toLowerCase().includes(q) || v.toLowerCase().includes(q)) return true;
  return s.gpus.some((g) => g.model.toLowerCase().includes(q) || g.uuid.toLowerCase().includes(q));
}

function Totals() {
  useFleet();
  useLive();
  const { hosts, online, gpus, busy, power_watts: power } = fleet.totals;
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
  useWant(state === 'idle' ? '*' : null); // a filter on values needs them all
  const shown = fleet.order.map((n) => fleet.servers.get(n)!).filter((s) => matches(s, needle, state));
  // the first render makes the cards that fit the window, the rest (and the
  // heatmap under them) follow a moment later: a big fleet's overview is
  // seen sooner than all of it can be laid out
  const [all, setAll] = useState(false);
  useEffect(() => {
    if (all || !fleet.loaded) return;
    const t = setTimeout(() => setAll(true), 30);
    return () => clearTimeout(t);
  }, [all, fleet.loaded]);
  const first = all ? shown.length : firstScreen();
  const holders = useHolders();
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
      {fleet.loaded && fleet.order.length > 0 && shown.length === 0 && (
        <p class="empty" data-testid="no-match">No host matches {needle ? <>“{q}”</> : null}{needle && state !== 'all' ? ' among ' : ''}{state !== 'all' ? <>{state === 'idle' ? 'hosts with idle GPUs' : `${state} hosts`}</> : null}.{' '}
          <button type="button" class="link" onClick={() => { setQ(''); setState('all'); }}>Show all {fleet.order.length} hosts</button></p>
      )}
      <div class="hosts" data-testid="hosts">
        {shown.map((s, i) => (i < first ? <HostCard key={s.name} name={s.name} held={heldText(holders, s.name)} /> : <CardPlaceholder key={s.name} name={s.name} />))}
      </div>
      {all && fleet.order.length > 0 && <Heatmap names={shown.map((s) => s.name)} shape={shown.map((s) => `${s.name}:${s.gpus.length}`).join()} />}
    </Page>
  );
}
