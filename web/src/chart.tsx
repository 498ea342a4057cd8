// A uPlot time-series chart: drag to zoom (reported through onZoom so the
// page can fetch finer data), double-click to reset, resizes with its box.
import { useLayoutEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { cssVar } from './theme';

export interface ChartSeries { label: string; color: string }

const palette = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#14b8a6'];
export const seriesColor = (i: number) => palette[i % palette.length];

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
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shown = useRef<uPlot.AlignedData | null>(null);
  const zoomed = useRef(false); // a drag set the scale: keep it until new data
  const zoomCb = useRef(p.onZoom);
  zoomCb.current = p.onZoom;
  const xr = useRef(p.xRange);
  xr.current = p.xRange;

  // layout effects: the chart is drawn in the task that brought its data,
  // not after the next frame
  useLayoutEffect(() => {
    const el = box.current!;
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { stroke: cssVar('--grid') } };
    const fmt = p.fmt ?? ((v: number) => (Math.abs(v) >= 1000 ? v.toFixed(0) : +v.toFixed(2) + ''));
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: p.height ?? 200,
      title: p.title,
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { live: true },
      scales: { x: { time: true, range: (_u, min, max) => (xr.current && !zoomed.current ? xr.current : [min, max]) } },
      axes: [axis, { ...axis, size: 78, values: (_u, vals) => vals.map((v) => (v == null ? '' : (p.fmt ? fmt(v) : compact(v)) + p.unit)) }],
      series: [{}, ...p.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, points: { show: false },
        value: (_u: uPlot, v: number | null) => (v == null ? '–' : fmt(v) + p.unit) }))],
      hooks: {
        draw: [(u) => {
          // bench/ui.sh sets __gfBench; marks would pile up in a tab left open
          const x = u.data[0];
          if (import.meta.env.MODE === 'test' && (window as any).__gfBench && x.length)
            performance.mark(`gf:chart-drawn:${p.title}`, { detail: { points: x.length, spanS: x[x.length - 1] - x[0] } });
        }],
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          zoomed.current = true;
          const min = u.posToVal(u.select.left, 'x'), max = u.posToVal(u.select.left + u.select.width, 'x');
          zoomCb.current?.(min, max);
        }],
      },
    };
    plot.current = new uPlot(opts, p.data, el);
    shown.current = p.data;
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: p.height ?? 200 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [p.series.map((s) => s.label).join('|'), p.title, document.documentElement.dataset.theme]);

  useLayoutEffect(() => {
    if (shown.current === p.data) return; // just created with it
    shown.current = p.data;
    zoomed.current = false;
    plot.current?.setData(p.data);
  }, [p.data]);

  const n = (p.data[0] as ArrayLike<number>).length;
  // an empty chart says so (an offline host, a range before it existed)
  // instead of drawing bare axes that read as zero
  const empty = !p.data.slice(1).some((ys) => Array.prototype.some.call(ys, (v: number | null) => v != null));
  return <div class="chart" ref={box} role="img" aria-label={`${p.title} chart, ${empty ? 'no data in this range' : `${n} points`}`} data-points={n}
    data-empty={empty ? 'No data in this range' : undefined} />;
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
