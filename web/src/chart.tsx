// A uPlot time-series chart: drag to zoom (reported through onZoom so the
// page can fetch finer data), double-click to reset, resizes with its box;
// one crosshair across the page's charts, last/min/max/mean of the range
// shown under it, and its picture (PNG) and points (CSV) to download.
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { cssVar } from './theme';

export interface ChartSeries { label: string; color: string }

const palette = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#14b8a6', '#ec4899', '#84cc16', '#0ea5e9', '#a16207'];
export const seriesColor = (i: number) => palette[i % palette.length];

/** The y axis of a chart: fixed ends where the quantity has them (0..100
 * for a utilization), and a series whose largest value is the top (memory's
 * total, power's limit). Data beyond an end is never cut off. */
export interface YRange { min?: number; max?: number; maxOf?: number }

/** Axis steps in powers of two of 1024's powers: byte axes read 256 MiB,
 * 512 MiB, 1 GiB, not 488.3 MiB. */
const BINARY_INCRS = (() => {
  const out: number[] = [];
  for (let k = 0; k <= 5; k++) for (let m = 1; m < 1024; m *= 2) out.push(m * 1024 ** k);
  return out;
})();

/** An event at a moment (an XID error), drawn as a line across the chart. */
export interface Mark { t: number; label: string; detail?: string }
/** A stretch of time (clocks held down, and why), drawn as a shaded band. */
export interface Band { from: number; to: number; label: string }

interface Stat { last: number | null; min: number | null; max: number | null; avg: number | null }

/** Marks and bands, on the plot's canvas under the series. */
function drawEvents(u: uPlot, marks: Mark[] | undefined, bands: Band[] | undefined) {
  const { ctx, bbox } = u;
  ctx.save();
  for (const b of bands ?? []) {
    const x0 = Math.max(bbox.left, u.valToPos(b.from, 'x', true)), x1 = Math.min(bbox.left + bbox.width, u.valToPos(b.to, 'x', true));
    if (x1 <= x0) continue;
    ctx.fillStyle = 'rgba(245, 158, 11, 0.18)';
    ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
  }
  ctx.strokeStyle = cssVar('--crit') || '#c81e1e';
  ctx.fillStyle = ctx.strokeStyle;
  ctx.lineWidth = Math.max(1, devicePixelRatio);
  ctx.font = `${Math.round(10 * devicePixelRatio)}px system-ui, sans-serif`;
  for (const m of marks ?? []) {
    const x = Math.round(u.valToPos(m.t, 'x', true));
    if (x < bbox.left || x > bbox.left + bbox.width) continue;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.fillText(m.label, x + 3 * devicePixelRatio, bbox.top + 11 * devicePixelRatio);
  }
  ctx.restore();
}

/** last, min, max and mean of each series over [lo, hi] (seconds). */
function statsOf(d: uPlot.AlignedData, lo: number, hi: number): Stat[] {
  const x = d[0] as ArrayLike<number>;
  return d.slice(1).map((ys) => {
    const y = ys as ArrayLike<number | null>;
    let last: number | null = null, min = Infinity, max = -Infinity, sum = 0, n = 0;
    for (let i = 0; i < x.length; i++) {
      const v = y[i];
      if (v == null || x[i] < lo || x[i] > hi) continue;
      last = v;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      n++;
    }
    return n ? { last, min, max, avg: sum / n } : { last: null, min: null, max: null, avg: null };
  });
}

function download(name: string, href: string) {
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

const fileName = (title: string, ext: string) => `${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.${ext}`;

/** data with a column for every series: a page may give new series a
 * moment before their data (uPlot reads a missing column and throws) */
function fitted(d: uPlot.AlignedData, n: number): uPlot.AlignedData {
  if (d.length >= n + 1) return d;
  const len = (d[0] as ArrayLike<number>).length;
  return [...d, ...Array.from({ length: n + 1 - d.length }, () => new Array(len).fill(null))] as uPlot.AlignedData;
}

export function Chart(p: {
  title: string;
  unit: string;
  series: ChartSeries[];
  data: uPlot.AlignedData;
  height?: number;
  onZoom?: (minS: number, maxS: number) => void;
  fmt?: (v: number) => string;
  /** the window shown, seconds (else the data's extent) */
  xRange?: [number, number];
  y?: YRange;
  /** values are bytes (or bytes/s): axis steps in binary units */
  binary?: boolean;
  marks?: Mark[];
  bands?: Band[];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shown = useRef<uPlot.AlignedData | null>(null);
  const zoomed = useRef(false); // a drag set the scale: keep it until new data
  const zoomCb = useRef(p.onZoom);
  zoomCb.current = p.onZoom;
  const xr = useRef(p.xRange);
  xr.current = p.xRange;
  const yr = useRef(p.y);
  yr.current = p.y;
  const ev = useRef({ marks: p.marks, bands: p.bands });
  ev.current = { marks: p.marks, bands: p.bands };
  const [stats, setStats] = useState<Stat[]>([]);
  const fmt = p.fmt ?? ((v: number) => (Math.abs(v) >= 1000 ? v.toFixed(0) : +v.toFixed(2) + ''));
  const fmtRef = useRef(fmt);
  fmtRef.current = fmt;

  // layout effects: the chart is drawn in the task that brought its data,
  // not after the next frame
  useLayoutEffect(() => {
    const el = box.current!;
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { stroke: cssVar('--grid') } };
    const restat = (u: uPlot) => {
      const x = u.scales.x;
      if (x.min != null && x.max != null) setStats(statsOf(u.data, x.min, x.max));
    };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: p.height ?? 200,
      title: p.title,
      // one crosshair for every chart of the page
      cursor: { drag: { x: true, y: false, setScale: true }, sync: { key: 'gf-page' } },
      legend: { live: true },
      scales: {
        x: { time: true, range: (_u, min, max) => (xr.current && !zoomed.current ? xr.current : [min, max]) },
        y: {
          range: (u, dmin, dmax) => {
            const r = yr.current;
            let lo = r?.min !== undefined ? Math.min(r.min, dmin ?? r.min) : dmin, hi = r?.max !== undefined ? Math.max(r.max, dmax ?? r.max) : dmax;
            if (r?.maxOf !== undefined) {
              const ys = u.data[r.maxOf + 1] as ArrayLike<number | null> | undefined;
              for (let i = 0; ys && i < ys.length; i++) if (ys[i] != null && ys[i]! > hi) hi = ys[i]!;
            }
            if (lo == null || hi == null || !Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
            if (r?.max === undefined && r?.maxOf === undefined) hi += (hi - lo) * 0.05 || 1; // headroom above a free top
            if (lo === hi) hi = lo + 1;
            return [lo, hi];
          },
        },
      },
      axes: [axis, { ...axis, size: 84, ...(p.binary ? { incrs: BINARY_INCRS } : {}),
        values: (_u, vals) => vals.map((v) => (v == null ? '' : (p.fmt ? fmtRef.current(v) : compact(v)) + p.unit)) }],
      series: [{}, ...p.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5,
        value: (_u: uPlot, v: number | null) => (v == null ? '–' : fmtRef.current(v) + p.unit) }))],
      hooks: {
        drawClear: [(u) => drawEvents(u, ev.current.marks, ev.current.bands)],
        draw: [(u) => {
          // bench/ui.sh sets __gfBench; marks would pile up in a tab left open
          const x = u.data[0];
          if (import.meta.env.MODE === 'test' && (window as any).__gfBench && x.length)
            performance.mark(`gf:chart-drawn:${p.title}`, { detail: { points: x.length, spanS: x[x.length - 1] - x[0] } });
        }],
        setScale: [(u, key) => {
          if (key === 'x') restat(u);
          // the axis's ends, for a test or a curious reader of the DOM
          const root = box.current?.parentElement, y = u.scales.y;
          if (key === 'y' && root && y.min != null && y.max != null) {
            root.dataset.yMin = String(+y.min.toPrecision(6));
            root.dataset.yMax = String(+y.max.toPrecision(6));
          }
        }],
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          zoomed.current = true;
          const min = u.posToVal(u.select.left, 'x'), max = u.posToVal(u.select.left + u.select.width, 'x');
          zoomCb.current?.(min, max);
        }],
      },
    };
    plot.current = new uPlot(opts, fitted(p.data, p.series.length), el);
    shown.current = p.data;
    restat(plot.current);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: p.height ?? 200 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [p.series.map((s) => s.label).join('|'), p.title, p.binary, document.documentElement.dataset.theme]);

  // new marks or bands: drawn again, same data
  const evKey = `${(p.marks ?? []).map((m) => m.t).join()}|${(p.bands ?? []).map((b) => `${b.from}-${b.to}`).join()}`;
  useLayoutEffect(() => {
    plot.current?.redraw(false, false);
  }, [evKey]);

  useLayoutEffect(() => {
    if (shown.current === p.data) return; // just created with it
    shown.current = p.data;
    zoomed.current = false;
    plot.current?.setData(fitted(p.data, p.series.length));
  }, [p.data]);

  const png = () => {
    const u = plot.current;
    if (!u) return;
    const src = u.ctx.canvas, dpr = src.width / u.width || 1, pad = Math.round(28 * dpr);
    const c = document.createElement('canvas');
    c.width = src.width;
    c.height = src.height + pad;
    const ctx = c.getContext('2d')!;
    ctx.fillStyle = cssVar('--panel') || '#fff';
    ctx.fillRect(0, 0, c.width, c.height);
    ctx.fillStyle = cssVar('--text') || '#000';
    ctx.font = `600 ${Math.round(14 * dpr)}px system-ui, sans-serif`;
    ctx.fillText(`${p.title} · ${p.series.map((s) => s.label).join(', ')}`, 8 * dpr, 19 * dpr);
    ctx.drawImage(src, 0, pad);
    download(fileName(p.title, 'png'), c.toDataURL('image/png'));
  };
  const csv = () => {
    const u = plot.current;
    const d = p.data, x = d[0] as ArrayLike<number>;
    const lo = u?.scales.x.min ?? -Infinity, hi = u?.scales.x.max ?? Infinity;
    const q = (t: string) => (/[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t);
    const rows = [['time', ...p.series.map((s) => `${s.label}${p.unit ? ` (${p.unit.trim()})` : ''}`)].map(q).join(',')];
    for (let i = 0; i < x.length; i++) {
      if (x[i] < lo || x[i] > hi) continue;
      rows.push([new Date(x[i] * 1000).toISOString(), ...d.slice(1).map((ys) => {
        const v = (ys as ArrayLike<number | null>)[i];
        return v == null ? '' : String(v);
      })].join(','));
    }
    download(fileName(p.title, 'csv'), URL.createObjectURL(new Blob([rows.join('\n') + '\n'], { type: 'text/csv' })));
  };

  const n = (p.data[0] as ArrayLike<number>).length;
  // an empty chart says so (an offline host, a range before it existed)
  // instead of drawing bare axes that read as zero
  const empty = !p.data.slice(1).some((ys) => Array.prototype.some.call(ys, (v: number | null) => v != null));
  const f = (v: number | null) => (v == null ? '–' : fmt(v) + p.unit);
  return (
    <div class="chart" role="group" aria-label={`${p.title} chart, ${empty ? 'no data in this range' : `${n} points`}`} data-points={n}
      data-empty={empty ? 'No data in this range' : undefined}>
      <div class="chart-tools">
        <button type="button" class="link" onClick={png} title={`${p.title} as a PNG image`}>PNG</button>
        <button type="button" class="link" onClick={csv} title={`the points of ${p.title} shown, as CSV`}>CSV</button>
      </div>
      <div ref={box} role="img" aria-label={`${p.title} over time`} />
      {((p.marks?.length ?? 0) > 0 || (p.bands?.length ?? 0) > 0) && (
        <ul class="chart-events" aria-label={`${p.title}: events`} data-marks={p.marks?.length ?? 0} data-bands={p.bands?.length ?? 0}>
          {(p.marks ?? []).slice(-5).map((m) => <li class="mark">{m.label}{m.detail ? ` (${m.detail})` : ''} at {new Date(m.t * 1000).toLocaleTimeString()}</li>)}
          {(p.bands ?? []).slice(-3).map((b) => <li class="band">{b.label}, {new Date(b.from * 1000).toLocaleTimeString()}–{new Date(b.to * 1000).toLocaleTimeString()}</li>)}
        </ul>
      )}
      {!empty && (
        <table class="chart-stats" aria-label={`${p.title}: last, min, max, mean of the range shown`}>
          <thead><tr><th /><th>last</th><th>min</th><th>max</th><th>mean</th></tr></thead>
          <tbody>
            {p.series.map((s, i) => stats[i] && (
              <tr data-series={s.label}><th><i style={{ background: s.color }} />{s.label}</th>
                <td>{f(stats[i].last)}</td><td>{f(stats[i].min)}</td><td>{f(stats[i].max)}</td><td>{f(stats[i].avg)}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** 81559 -> 81.6k: axis labels that fit. */
export function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return +(v / 1e3).toFixed(1) + 'k';
  return +v.toFixed(2) + '';
}

/** Series of one query aligned on the union of their timestamps. */
export function align(cols: { t: number[]; v: (number | null)[] }[]): uPlot.AlignedData {
  const ts = new Set<number>();
  for (const c of cols) for (const t of c.t) ts.add(t);
  const x = Float64Array.from(ts).sort();
  const idx = new Map<number, number>();
  x.forEach((t, i) => idx.set(t, i));
  const ys = cols.map((c) => {
    const y: (number | null)[] = new Array(x.length).fill(null);
    for (let i = 0; i < c.t.length; i++) y[idx.get(c.t[i])!] = c.v[i];
    return y;
  });
  return [Array.from(x), ...ys] as uPlot.AlignedData;
}

/** A step giving about `points` points over span seconds, on a round value. */
export function niceStep(spanS: number, points = 720): number {
  const want = spanS / points;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return steps.find((s) => s >= want) ?? 86400;
}
