// A host's GPUs side by side: the GPUs picked (all at first, kept in the
// URL) as one series each on a chart per figure, and the GPU memory of the
// processes on them over time (the live table shows only now).
import { useEffect, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { queryRange, selValue } from '../api';
import { align, Chart, niceStep, seriesColor, YRange } from '../chart';
import type { Gpu } from '../fleet';
import { bytes } from '../format';

interface Figure { metric: string; title: string; unit: string; scale?: number; y?: YRange; fmt?: (v: number) => string }

const FIGURES: Figure[] = [
  { metric: 'DCGM_FI_DEV_GPU_UTIL', title: 'GPU utilization', unit: '%', y: { min: 0, max: 100 } },
  { metric: 'DCGM_FI_DEV_FB_USED', title: 'GPU memory used', unit: ' GiB', scale: 1 / 1024, y: { min: 0 }, fmt: (v) => v.toFixed(1) },
  { metric: 'DCGM_FI_DEV_GPU_TEMP', title: 'GPU temperature', unit: ' °C' },
  { metric: 'DCGM_FI_DEV_POWER_USAGE', title: 'GPU power', unit: ' W', y: { min: 0 } },
];

/** processes drawn at most (the largest by their peak) */
const MAX_PROCS = 8;

type Col = { t: number[]; v: (number | null)[] };
const scaled = (c: Col, k = 1): Col => (k === 1 ? c : { t: c.t, v: c.v.map((v) => (v === null ? null : v * k)) });

function pickedFromUrl(): Set<string> | null {
  const q = new URLSearchParams(location.search).get('gpus');
  return q === null ? null : new Set(q.split(',').filter(Boolean));
}

export function HostGpus({ server, gpus, start, end }: { server: string; gpus: Gpu[]; start: number; end: number }) {
  const [picked, setPicked] = useState<Set<string> | null>(pickedFromUrl);
  const shown = gpus.filter((g) => !picked || picked.has(String(g.index)));
  const key = shown.map((g) => g.index).join(',');
  const [got, setCharts] = useState<{ key: string; figs: (uPlot.AlignedData | null)[]; procs: uPlot.AlignedData | null; procNames: string[] } | null>(null);
  const charts = got && got.key === key ? got : null; // never one GPU's data under another's name

  useEffect(() => {
    const u = new URL(location.href);
    if (picked) u.searchParams.set('gpus', [...picked].sort().join(','));
    else u.searchParams.delete('gpus');
    history.replaceState(null, '', u.pathname + u.search);
  }, [picked && [...picked].sort().join(',')]);

  useEffect(() => {
    let alive = true;
    const step = Math.max(niceStep(end - start, 360), 2);
    const srv = `server="${selValue(server)}"`;
    Promise.all([
      queryRange(`{__name__=~"${FIGURES.map((f) => f.metric).join('|')}",${srv}}`, start, end, step),
      queryRange(`gpufleet_gpu_process_memory_bytes{${srv}}`, start, end, step, 'max'),
    ]).then(([figs, procs]) => {
      if (!alive) return;
      const none: Col = { t: [], v: [] };
      const of = (metric: string, gpu: number) => figs.series.find((s) => s.labels.__name__ === metric && s.labels.gpu === String(gpu)) ?? none;
      const shownIdx = new Set(shown.map((g) => String(g.index)));
      // the largest processes of the GPUs shown, by their peak in the range
      const ps = procs.series.filter((s) => shownIdx.has(s.labels.gpu))
        .map((s) => ({ s, peak: Math.max(0, ...s.v.map((v) => v ?? 0)) }))
        .sort((a, b) => b.peak - a.peak).slice(0, MAX_PROCS);
      setCharts({
        key,
        figs: FIGURES.map((f) => (shown.length ? align(shown.map((g) => scaled(of(f.metric, g.index), f.scale))) : null)),
        procs: ps.length ? align(ps.map((p) => p.s)) : null,
        procNames: ps.map(({ s: { labels: l } }) => `${l.process_name || '?'} (${l.pid}${l.container_id ? `, ${l.container_id.slice(0, 12)}` : ''}) on GPU ${l.gpu}`),
      });
    }, () => alive && setCharts(null));
    return () => {
      alive = false;
    };
  }, [server, start, end, key]);

  if (gpus.length === 0) return null;
  const toggle = (index: number) => {
    const next = new Set(picked ?? gpus.map((g) => String(g.index)));
    if (next.has(String(index))) next.delete(String(index));
    else next.add(String(index));
    setPicked(next.size === gpus.length ? null : next);
  };
  return (
    <section class="host-gpus" aria-labelledby="host-gpus-title">
      <h2 id="host-gpus-title">GPUs compared</h2>
      <div class="filters" role="group" aria-label="GPUs to compare">
        {gpus.map((g, i) => (
          <label class="check"><input type="checkbox" name={`gpu-${g.index}`} checked={!picked || picked.has(String(g.index))} onChange={() => toggle(g.index)} />
            <i class="swatch" style={{ background: seriesColor(shown.indexOf(g) >= 0 ? shown.indexOf(g) : i) }} /> GPU {g.index}</label>
        ))}
      </div>
      <div class="charts">
        {charts && FIGURES.map((f, i) => charts.figs[i] && (
          <Chart title={f.title} unit={f.unit} data={charts.figs[i]!} y={f.y} fmt={f.fmt}
            series={shown.map((g, k) => ({ label: `GPU ${g.index}`, color: seriesColor(k) }))} />
        ))}
        {charts && (charts.procs ? (
          <Chart title="GPU memory per process" unit="" data={charts.procs} fmt={(v) => bytes(v)} binary y={{ min: 0 }}
            series={charts.procNames.map((n, k) => ({ label: n, color: seriesColor(k) }))} />
        ) : <p class="muted" data-testid="no-proc-history">No process used the GPUs shown in this range.</p>)}
      </div>
    </section>
  );
}
