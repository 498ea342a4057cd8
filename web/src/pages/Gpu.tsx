// One GPU: its live values and history charts over a chosen range, zoom by
// drag, and a live tail fed by the deltas.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { queryRange, selValue } from '../api';
import { align, Band, Chart, Mark, niceStep, seriesColor, YRange } from '../chart';
import { fleet } from '../fleet';
import { GPU_FIELDS, GpuValues } from '../gen/fields';
import { mib, num, pct, rate } from '../format';
import { DateRange, Link, Page, RangeChips, rangeSeconds } from '../ui';
import { OfflineNote } from '../offline';
import { useFleet, useWant } from '../hooks';
import { useHolders } from '../holders';

/** A chart: a title, the unit of its axis, and its series: a figure of
 * the table (gen/fields.ts gives its metric) and the legend's word; scale
 * turns the metric's unit into the one shown (MiB to GiB, KB/s to B/s),
 * y fixes the axis's ends where the quantity has them. */
interface Panel {
  /** a series is a figure of the live table, or a metric only the store has */
  title: string; unit: string; series: [keyof GpuValues | string, string][];
  scale?: number; y?: YRange; binary?: boolean; fmt?: (v: number) => string;
  /** a counter shown as what it gained since the range began */
  sinceStart?: boolean;
  /** the query it comes with (0: utilization alone, 1: the live figures, 2: health) */
  group: number;
  /** XID errors drawn on it, or the spans its clocks were held down */
  marks?: boolean; bands?: boolean;
}

export const PANELS: Panel[] = [
  { title: 'Utilization', unit: '%', series: [['util_percent', 'GPU'], ['mem_copy_util_percent', 'memory copy']], y: { min: 0, max: 100 }, group: 0, marks: true },
  { title: 'Memory', unit: ' GiB', series: [['fb_used_mib', 'used'], ['fb_total_mib', 'total']], scale: 1 / 1024, y: { min: 0, maxOf: 1 },
    fmt: (v) => (v < 10 ? v.toFixed(2) : v.toFixed(1)), group: 1 },
  { title: 'Temperature', unit: ' °C', series: [['temp_celsius', 'GPU'], ['mem_temp_celsius', 'memory']], group: 1 },
  { title: 'Power', unit: ' W', series: [['power_watts', 'draw'], ['power_limit_watts', 'limit']], y: { min: 0, maxOf: 1 }, group: 1, bands: true },
  { title: 'Clocks', unit: ' MHz', series: [['sm_clock_mhz', 'SM'], ['mem_clock_mhz', 'memory']], y: { min: 0 }, group: 1, bands: true },
  { title: 'PCIe', unit: '', series: [['pcie_tx_kilobytes_per_second', 'TX'], ['pcie_rx_kilobytes_per_second', 'RX']], scale: 1024,
    y: { min: 0 }, binary: true, fmt: rate, group: 1 },
  { title: 'Fan', unit: '%', series: [['DCGM_FI_DEV_FAN_SPEED', 'fan']], y: { min: 0, max: 100 }, group: 2 },
  { title: 'Energy', unit: ' kWh', series: [['DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'used in the range']], scale: 1 / 3.6e9, sinceStart: true,
    y: { min: 0 }, fmt: (v) => v.toFixed(v < 1 ? 3 : 2), group: 2 },
  { title: 'ECC errors', unit: '', series: [['DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'single-bit'], ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'double-bit']],
    y: { min: 0 }, fmt: (v) => v.toFixed(0), group: 2, marks: true },
];

/** The metric of a series of a panel: its field's, or the series is one. */
const metricOf = (f: string) => (GPU_FIELDS as Record<string, { metric?: string }>)[f]?.metric ?? f;
const isField = (f: string) => f in GPU_FIELDS;

/** Clock event reasons that mean the GPU is held down (idle and the
 * applications' own clock settings do not). */
const HELD_DOWN = new Set(['sw_power_cap', 'hw_slowdown', 'sync_boost', 'sw_thermal_slowdown', 'hw_thermal_slowdown', 'hw_power_brake_slowdown']);
const reasonWords: Record<string, string> = {
  sw_power_cap: 'power cap', hw_slowdown: 'hardware slowdown', sync_boost: 'sync boost', sw_thermal_slowdown: 'thermal (software)',
  hw_thermal_slowdown: 'thermal (hardware)', hw_power_brake_slowdown: 'power brake',
};

/** XID errors (each step where a code's counter rose; a counter that first
 * shows up inside the window rose from 0) and the steps a held-down reason
 * was on, merged into spans. */
function eventsOf(series: { labels: Record<string, string>; t: number[]; v: (number | null)[] }[], start: number, step: number): { marks: Mark[]; bands: Band[] } {
  const marks: Mark[] = [], held = new Map<number, Set<string>>();
  for (const s of series) {
    if (s.labels.__name__ === 'gpufleet_gpu_xid_errors_total') {
      let prev: number | null = s.t.length && s.t[0] > start + 2 * step ? 0 : null;
      s.t.forEach((t, i) => {
        const v = s.v[i];
        if (v === null) return;
        if (prev !== null && v > prev)
          marks.push({ t, label: `XID ${s.labels.xid}`, detail: s.labels.description });
        prev = v;
      });
    } else if (HELD_DOWN.has(s.labels.reason)) {
      s.t.forEach((t, i) => {
        if ((s.v[i] ?? 0) > 0) (held.get(t) ?? held.set(t, new Set()).get(t)!).add(reasonWords[s.labels.reason] ?? s.labels.reason);
      });
    }
  }
  const bands: Band[] = [];
  for (const t of [...held.keys()].sort((a, b) => a - b)) {
    const label = `held down: ${[...held.get(t)!].sort().join(', ')}`, last = bands[bands.length - 1];
    if (last && last.to >= t && last.label === label) last.to = t + step;
    else bands.push({ from: t, to: t + step, label });
  }
  return { marks: marks.sort((a, b) => a.t - b.t), bands };
}

/** A series as the panel shows it (scaled; a counter from its first value). */
function shown(x: { t: number[]; v: (number | null)[] }, p: Panel) {
  const k = p.scale ?? 1, first = p.sinceStart ? x.v.find((v) => v !== null) ?? 0 : 0;
  return k === 1 && !first ? x : { t: x.t, v: x.v.map((v) => (v === null ? null : (v - first) * k)) };
}



type Window = { start: number; end: number; live: boolean };

export function GpuPage({ server, uuid }: { server: string; uuid: string }) {
  useFleet();
  useWant(server);
  const s = fleet.servers.get(server);
  const g = s?.gpus.find((x) => x.uuid === uuid);
  const [range, setRange] = useState(() => new URLSearchParams(location.search).get('range') ?? '1h');
  // a zoomed or picked window is in the URL too (from/to, seconds): a link
  // shows the same window
  const [win, setWin] = useState<Window | null>(() => {
    const q = new URLSearchParams(location.search), a = Number(q.get('from')), b = Number(q.get('to'));
    return a > 0 && b > a ? { start: a, end: b, live: false } : null;
  });
  const [tail, setTail] = useState(true);
  // per panel; null until its request answers
  const [data, setData] = useState<(uPlot.AlignedData | null)[] | null>(null);
  const [info, setInfo] = useState('');
  const [evs, setEvents] = useState<{ marks: Mark[]; bands: Band[] }>({ marks: [], bands: [] });
  const [error, setError] = useState('');
  const dataRef = useRef<(uPlot.AlignedData | null)[] | null>(null);
  dataRef.current = data;

  const span = rangeSeconds(range);
  const now = Math.floor(Date.now() / 1000);
  const w: Window = win ?? { start: now - span, end: now, live: true };

  useEffect(() => {
    const u = new URL(location.href);
    u.searchParams.set('range', range);
    if (win) {
      u.searchParams.set('from', String(win.start));
      u.searchParams.set('to', String(win.end));
    } else {
      u.searchParams.delete('from');
      u.searchParams.delete('to');
    }
    history.replaceState(null, '', u.pathname + u.search);
  }, [range, win?.start, win?.end]);

  // asked for from the render that chose the window (a layout effect), not
  // a frame later
  const asked = useRef(false);
  useLayoutEffect(() => {
    let alive = true;
    const step = niceStep(w.end - w.start);
    const t0 = performance.now();
    if (!asked.current) performance.mark('gf:range-start'); // else when clicked
    asked.current = false;
    // two requests, one after the other: utilization alone draws first (it
    // is what people look at; the store reads each series' chunks, so fewer
    // series come back sooner, and sooner with the server to itself: asked
    // beside the other five it answered 30-90 ms after a click on
    // bench/ui.sh, alone mostly 30-55), then the other five
    // the health charts (fan, energy, ECC) and the events come last
    const groups = [0, 1, 2].map((g) => PANELS.flatMap((p, i) => (p.group === g ? [i] : [])));
    let points = 0, left = groups.length;
    const ask = (g: number) => {
      const panels = groups[g];
      const names = panels.flatMap((i) => PANELS[i].series.map((m) => metricOf(m[0])));
      const match = `{__name__=~"${names.join('|')}",server="${selValue(server)}",UUID="${selValue(uuid)}"}`;
      const next = () => alive && (g + 1 < groups.length ? ask(g + 1) : events());
      // the health group's counters read as their last value per step
      queryRange(match, w.start, w.end, step, g === 2 ? 'last' : 'avg').then((r) => {
        if (!alive) return;
        next();
        const by = new Map(r.series.map((x) => [x.labels.__name__, x]));
        const none = { t: [], v: [] };
        setData((d) => {
          const next = d ? d.slice() : PANELS.map(() => null);
          for (const i of panels) next[i] = align(PANELS[i].series.map((m) => shown(by.get(metricOf(m[0])) ?? none, PANELS[i])));
          return next;
        });
        points += r.series.reduce((a, x) => a + x.t.length, 0);
        if (--left === 0) {
          setInfo(`${points} points, step ${step} s, ${r.tier} tier, ${Math.round(performance.now() - t0)} ms`);
          setError('');
        }
      }, (e) => {
        if (!alive) return;
        setError(String(e.message ?? e));
        next(); // the other charts may still come
      });
    };
    // XID errors (each code's counter, where it rose) and the steps a
    // held-down clock reason was on (its 0/1 gauge's max), last
    const events = () => {
      const sel = `server="${selValue(server)}",uuid="${selValue(uuid)}"`;
      Promise.all([queryRange(`gpufleet_gpu_xid_errors_total{${sel}}`, w.start, w.end, step, 'max'),
        queryRange(`gpufleet_gpu_clock_event_reason_active{${sel}}`, w.start, w.end, step, 'max')]).then(([x, r]) => {
        if (alive) setEvents(eventsOf([...x.series, ...r.series], w.start, step));
      }, () => alive && setEvents({ marks: [], bands: [] }));
    };
    ask(0);
    return () => {
      alive = false;
    };
  }, [server, uuid, range, win?.start, win?.end]);

  // the live tail: each delta for this GPU appends a point to every chart
  useEffect(() => {
    if (!tail || !w.live) return;
    return fleet.subscribe((changed) => {
      if ((changed && !changed.has(server)) || !dataRef.current) return;
      const srv = fleet.servers.get(server), x = srv?.gpus.find((q) => q.uuid === uuid);
      if (!srv || !x || !srv.online) return;
      const t = srv.ts_ms / 1000, cut = t - span;
      setData(dataRef.current.map((d, i) => {
        if (!d || !PANELS[i].series.every((m) => isField(m[0]))) return d; // the store's only: no live value
        const cols = d.map((c) => Array.from(c as ArrayLike<number | null>));
        if (cols[0].length && t <= (cols[0][cols[0].length - 1] as number)) return d;
        cols[0].push(t);
        PANELS[i].series.forEach((m, k) => {
          const v = x[m[0] as keyof GpuValues];
          cols[k + 1].push(v == null ? null : v * (PANELS[i].scale ?? 1));
        });
        let drop = 0;
        while (drop < cols[0].length && (cols[0][drop] as number) < cut) drop++;
        return cols.map((c) => c.slice(drop)) as uPlot.AlignedData;
      }));
    });
  }, [tail, w.live, server, uuid, span]);

  const holder = useHolders().get(`${server}/${uuid}`);
  const title = g ? `${server} · GPU ${g.index}` : `${server} · GPU`;
  return (
    <Page title={title} actions={<Link href={`/hosts/${encodeURIComponent(server)}`}>← {server}</Link>}>
      {s && <OfflineNote s={s} />}
      {!s && fleet.loaded && <p class="error" role="alert">No server named {server} is registered; what it stored is below.</p>}
      {g ? (
        <dl class="totals" aria-label="current values">
          <div><dt>Model</dt><dd class="text">{g.model}</dd></div>
          <div><dt>Utilization</dt><dd data-testid="gpu-util">{pct(g.util_percent)}</dd></div>
          <div><dt>Memory</dt><dd>{mib(g.fb_used_mib)} / {mib(g.fb_total_mib)}</dd></div>
          <div><dt>Temperature</dt><dd data-testid="gpu-temp">{num(g.temp_celsius, ' °C')}</dd></div>
          <div><dt>Power</dt><dd>{num(g.power_watts, ' W')} / {num(g.power_limit_watts, ' W')}</dd></div>
          <div><dt>UUID</dt><dd class="text mono small">{g.uuid}</dd></div>
          <div><dt>Held by</dt><dd data-testid="gpu-holder">{holder ? <Link href="/containers">{holder.name} ({holder.owner})</Link> : 'free'}</dd></div>
        </dl>
      ) : (
        fleet.loaded && s && <p class="muted">This GPU is not reporting now; its history is below.</p>
      )}
      <div class="filters" role="group" aria-label="time range">
        <RangeChips value={range} off={!!win} onPick={(name) => {
          performance.mark('gf:range-start');
          asked.current = true;
          setWin(null);
          setRange(name);
        }} />
        {win && <button type="button" class="chip on" onClick={() => setWin(null)}>reset zoom</button>}
        <label class="check"><input type="checkbox" checked={tail} onChange={(e) => setTail((e.target as HTMLInputElement).checked)} /> live</label>
        <DateRange key={win ? `${win.start}-${win.end}` : range} start={w.start} end={w.end} onPick={(a, b) => setWin({ start: a, end: b, live: false })} />
        {/* how the charts were read, for whoever wonders: a tooltip, not page text */}
        {info && <span class="info-dot" data-testid="chart-info" data-info={info} title={info} aria-label={info} tabIndex={0}>i</span>}
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="charts">
        {data && PANELS.map((p, i) => !data[i] ? <div class="chart" style={{ height: '200px' }} aria-busy="true" /> : (
          <Chart title={p.title} unit={p.unit} data={data[i]!} y={p.y} binary={p.binary} fmt={p.fmt}
            marks={p.marks ? evs.marks : undefined} bands={p.bands ? evs.bands : undefined}
            series={p.series.map((m, k) => ({ label: m[1], color: seriesColor(k) }))}
            xRange={w.live ? [Math.floor(Date.now() / 1000) - span, Math.floor(Date.now() / 1000)] : [w.start, w.end]}
            onZoom={(a, b) => setWin({ start: Math.floor(a), end: Math.ceil(b), live: false })} />
        ))}
      </div>
    </Page>
  );
}
