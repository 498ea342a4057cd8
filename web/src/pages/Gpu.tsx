// One GPU: its live values and history charts over a chosen range, zoom by
// drag, and a live tail fed by the deltas.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { queryRange, selValue } from '../api';
import { align, Chart, niceStep, seriesColor, YRange } from '../chart';
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
  title: string; unit: string; series: [keyof GpuValues, string][];
  scale?: number; y?: YRange; binary?: boolean; fmt?: (v: number) => string;
}

export const PANELS: Panel[] = [
  { title: 'Utilization', unit: '%', series: [['util_percent', 'GPU'], ['mem_copy_util_percent', 'memory copy']], y: { min: 0, max: 100 } },
  { title: 'Memory', unit: ' GiB', series: [['fb_used_mib', 'used'], ['fb_total_mib', 'total']], scale: 1 / 1024, y: { min: 0, maxOf: 1 },
    fmt: (v) => (v < 10 ? v.toFixed(2) : v.toFixed(1)) },
  { title: 'Temperature', unit: ' °C', series: [['temp_celsius', 'GPU'], ['mem_temp_celsius', 'memory']] },
  { title: 'Power', unit: ' W', series: [['power_watts', 'draw'], ['power_limit_watts', 'limit']], y: { min: 0, maxOf: 1 } },
  { title: 'Clocks', unit: ' MHz', series: [['sm_clock_mhz', 'SM'], ['mem_clock_mhz', 'memory']], y: { min: 0 } },
  { title: 'PCIe', unit: '', series: [['pcie_tx_kilobytes_per_second', 'TX'], ['pcie_rx_kilobytes_per_second', 'RX']], scale: 1024,
    y: { min: 0 }, binary: true, fmt: rate },
];

/** A series as the panel shows it (scaled). */
const scaled = (x: { t: number[]; v: (number | null)[] }, k = 1) => (k === 1 ? x : { t: x.t, v: x.v.map((v) => (v === null ? null : v * k)) });

/** The metric of a series of a panel. */
const metricOf = (f: keyof GpuValues) => GPU_FIELDS[f].metric;


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
    const groups = [[0], PANELS.slice(1).map((_, k) => k + 1)];
    let points = 0, left = groups.length;
    const ask = (g: number) => {
      const panels = groups[g];
      const names = panels.flatMap((i) => PANELS[i].series.map((m) => metricOf(m[0])));
      const match = `{__name__=~"${names.join('|')}",server="${selValue(server)}",UUID="${selValue(uuid)}"}`;
      const next = () => alive && g + 1 < groups.length && ask(g + 1);
      queryRange(match, w.start, w.end, step).then((r) => {
        if (!alive) return;
        next();
        const by = new Map(r.series.map((x) => [x.labels.__name__, x]));
        const none = { t: [], v: [] };
        setData((d) => {
          const next = d ? d.slice() : PANELS.map(() => null);
          for (const i of panels) next[i] = align(PANELS[i].series.map((m) => scaled(by.get(metricOf(m[0])) ?? none, PANELS[i].scale)));
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
        if (!d) return d;
        const cols = d.map((c) => Array.from(c as ArrayLike<number | null>));
        if (cols[0].length && t <= (cols[0][cols[0].length - 1] as number)) return d;
        cols[0].push(t);
        PANELS[i].series.forEach((m, k) => {
          const v = x[m[0]];
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
            series={p.series.map((m, k) => ({ label: m[1], color: seriesColor(k) }))}
            xRange={w.live ? [Math.floor(Date.now() / 1000) - span, Math.floor(Date.now() / 1000)] : [w.start, w.end]}
            onZoom={(a, b) => setWin({ start: Math.floor(a), end: Math.ceil(b), live: false })} />
        ))}
      </div>
    </Page>
  );
}
