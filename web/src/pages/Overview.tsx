// The fleet at a glance: totals, a card per host with a tile per GPU, a
// filter, and the utilization heatmap of the last hour.
import { memo } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import { fleet, Gpu, Server } from '../fleet';
import { bytes, isNum, level, mib, num, pct, rate } from '../format';
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

export const GpuTile = memo(function GpuTile({ server, g }: { server: string; g: Gpu }) {
  const memPct = isNum(g.fb_used_mib) && isNum(g.fb_total_mib) && g.fb_total_mib > 0 ? (100 * g.fb_used_mib) / g.fb_total_mib : null;
  const busy = isNum(g.util) && g.util >= BUSY;
  const t = level(g.temp_c, 80, 90);
  return (
    <Link href={`/hosts/${encodeURIComponent(server)}/gpus/${encodeURIComponent(g.uuid)}`}
      class={`tile ${busy ? 'busy' : 'idle'} temp-${t}`}
      title={`GPU ${g.index} ${g.model}: ${pct(g.util)} busy, ${mib(g.fb_used_mib)} of ${mib(g.fb_total_mib)}, ${num(g.temp_c, ' °C')}, ${num(g.power_w, ' W')}`}>
      <span class="tile-head"><b>GPU {g.index}</b></span>
      <span class="model">{g.model.replace(/^NVIDIA (GeForce )?/, '')}</span>
      <span class="meter" role="meter" aria-label="utilization" aria-valuenow={g.util ?? 0} aria-valuemin={0} aria-valuemax={100}>
        <span style={{ width: `${g.util ?? 0}%` }} />
      </span>
      <span class="tile-vals">
        <span data-k="util" title="utilization">{pct(g.util)}</span>
        <span data-k="temp" class={`t-${t}`} title="temperature">{num(g.temp_c, '°C')}</span>
        <span data-k="mem" title="memory used">mem {pct(memPct)}</span>
        <span data-k="power" title="power draw">{num(g.power_w, ' W')}</span>
      </span>
    </Link>
  );
});

export const HostCard = memo(function HostCard({ s }: { s: Server }) {
  const h = s.host;
  const state = s.online === true ? 'online' : s.online === false ? 'offline' : 'unknown';
  const memPct = isNum(h.mem_used_bytes) && isNum(h.mem_total_bytes) ? (100 * h.mem_used_bytes) / h.mem_total_bytes : null;
  const diskPct = isNum(h.disk_used_bytes) && isNum(h.disk_total_bytes) ? (100 * h.disk_used_bytes) / h.disk_total_bytes : null;
  return (
    <article class={`card host ${state}`} aria-label={`host ${s.name}`} data-host={s.name}>
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
      <div class="tiles">
        {s.gpus.map((g) => <GpuTile key={g.uuid} server={s.name} g={g} />)}
        {s.gpus.length === 0 && <p class="muted">{s.online === false ? s.last_error || 'unreachable' : 'no GPUs reported'}</p>}
      </div>
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

export function Overview() {
  useFleet();
  const [q, setQ] = useState(() => new URLSearchParams(location.search).get('q') ?? '');
  const [state, setState] = useState('all');
  const needle = q.trim().toLowerCase();
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
        {shown.map((s) => <HostCard key={s.name} s={s} />)}
      </div>
      {fleet.order.length > 0 && <Heatmap servers={shown} />}
    </Page>
  );
}
