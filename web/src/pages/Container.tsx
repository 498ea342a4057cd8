// One container: what it is and holds, its logs (followed live), a
// terminal into it, its files, its usage now, and charts of its
// CPU, memory (with its limit), GPU memory and GPU utilization over a
// chosen range, from the agent's gpufleet_container_* series the server
// stores.
import { useEffect, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { get, queryRange, selValue } from '../api';
import { align, Chart, niceStep, seriesColor } from '../chart';
import { atLeast, type Me } from '../api';
import { bytes, time } from '../format';
import { ContainerFiles } from './ContainerFiles';
import { ContainerLogs } from './ContainerLogs';
import { Terminal } from './Terminal';
import { Link, Page, RangeChips, rangeSeconds, useAsync } from '../ui';

interface Row {
  id: number; name: string; owner: string; server: string; engine_id: string; image: string; state: string; detail: string;
  gpus: string[]; ports: { container: number; host: number; proto: string }[]; cpus: number; memory_bytes: number; created_ms: number;
}

const REFRESH_MS = 15000; // the agent's series arrive with each scrape

export function ContainerPage({ id, me }: { id: string; me: Me }) {
  const row = useAsync(() => get<Row>(`/api/v1/containers/${encodeURIComponent(id)}`), [id]);
  const c = row.data;
  const [range, setRange] = useState(() => new URLSearchParams(location.search).get('range') ?? '1h');
  const [charts, setCharts] = useState<{ data: uPlot.AlignedData[]; x: [number, number] } | null>(null);
  const [info, setInfo] = useState('');
  const [tick, setTick] = useState(0);
  const [term, setTerm] = useState(false);
  // who may act on it may open a shell in it (the server decides again)
  const canShell = !!c && c.state === 'running' && (atLeast(me.role, 'operator') || (me.role === 'user' && c.owner === me.username));

  useEffect(() => {
    const t = window.setInterval(() => setTick((n) => n + 1), REFRESH_MS);
    return () => window.clearInterval(t);
  }, []);
  useEffect(() => {
    const u = new URL(location.href);
    u.searchParams.set('range', range);
    history.replaceState(null, '', u.pathname + u.search);
  }, [range]);

  useEffect(() => {
    if (!c?.engine_id) return undefined;
    let alive = true;
    const span = rangeSeconds(range);
    const end = Math.floor(Date.now() / 1000), start = end - span, step = Math.max(niceStep(span, 360), 2);
    const sel = (m: string) => `${m}{server="${selValue(c.server)}",container_id="${selValue(c.engine_id)}"}`;
    const one = (r: { series: { t: number[]; v: (number | null)[] }[] }) => r.series[0] ?? { t: [], v: [] };
    Promise.all([
      queryRange(sel('gpufleet_container_cpu_seconds_total'), start, end, step, 'rate'),
      queryRange(sel('gpufleet_container_memory_bytes'), start, end, step),
      queryRange(sel('gpufleet_container_memory_limit_bytes'), start, end, step),
      queryRange(sel('gpufleet_container_gpu_memory_bytes'), start, end, step),
      queryRange(sel('gpufleet_container_gpu_utilization_percent'), start, end, step),
    ]).then(([cpu, mem, limit, gpu, util]) => {
      if (!alive) return;
      setCharts({ data: [align([one(cpu)]), align([one(mem), one(limit)]), align([one(gpu)]), align([one(util)])], x: [start, end] });
      setInfo(`${one(mem).t.length} points, step ${step} s`);
    }, (e) => alive && setInfo(String(e.message ?? e)));
    return () => {
      alive = false;
    };
  }, [c?.engine_id, c?.server, range, tick]);

  return (
    <Page title={c ? `Container ${c.name}` : 'Container'} actions={<Link href="/containers">← Containers</Link>}>
      {row.error && <p class="error" role="alert">{row.error}</p>}
      {c && (
        <>
          <dl class="totals" aria-label="container">
            <div><dt>State</dt><dd data-testid="ctr-state">{c.state}</dd></div>
            <div><dt>Owner</dt><dd>{c.owner}</dd></div>
            <div><dt>Host</dt><dd><Link href={`/hosts/${encodeURIComponent(c.server)}`}>{c.server}</Link></dd></div>
            <div><dt>CPUs</dt><dd>{c.cpus}</dd></div>
            <div><dt>Memory</dt><dd>{bytes(c.memory_bytes)}</dd></div>
            <div><dt>GPUs</dt><dd>{c.gpus.length}</dd></div>
          </dl>
          <p class="small">
            {c.detail && <>{c.detail} · </>}<span class="mono">{c.image}</span> · created {time(c.created_ms)}
            {c.ports.length > 0 && <> · ports {c.ports.map((p) => `${p.host}→${p.container}/${p.proto}`).join(' ')}</>}
            {me.routes && c.state === 'running' && c.ports.filter((p) => p.proto === 'tcp').map((p) => (
              <> · <a href={`/u/${c.owner}/${c.name}/${p.container}/`} target="_blank" rel="noopener" data-testid="route">open :{p.container}</a></>
            ))}
          </p>
          {c.gpus.length > 0 && (
            <p class="small mono">{c.gpus.map((u) => <><Link href={`/hosts/${encodeURIComponent(c.server)}/gpus/${encodeURIComponent(u)}`}>{u}</Link> </>)}</p>
          )}
        </>
      )}
      {c && c.engine_id && (
        <>
          {canShell && !term && <p><button type="button" onClick={() => setTerm(true)}>Open terminal</button></p>}
          {term && <Terminal path={`/api/v1/containers/${c.id}/terminal`} title="Terminal" onClose={() => setTerm(false)} />}
          <ContainerLogs id={c.id} name={c.name} running={c.state === 'running'} />
          {canShell && <ContainerFiles id={c.id} />}
        </>
      )}
      <div class="filters" role="group" aria-label="time range">
        <RangeChips value={range} onPick={setRange} />
        {info && <span class="info-dot" data-testid="chart-info" data-info={info} title={info} aria-label={info} tabIndex={0}>i</span>}
      </div>
      <div class="charts">
        {charts && (
          <>
            <Chart title="CPU" unit=" cores" data={charts.data[0]} xRange={charts.x} y={{ min: 0 }} fmt={(v) => (v < 1 ? v.toFixed(3) : v.toFixed(2))} series={[{ label: 'used', color: seriesColor(0) }]} />
            <Chart title="Memory" unit="" data={charts.data[1]} xRange={charts.x} fmt={(v) => bytes(v)} binary y={{ min: 0, maxOf: 1 }} series={[{ label: 'used', color: seriesColor(0) }, { label: 'limit', color: seriesColor(1) }]} />
            <Chart title="GPU memory" unit="" data={charts.data[2]} xRange={charts.x} fmt={(v) => bytes(v)} binary y={{ min: 0 }} series={[{ label: 'its processes', color: seriesColor(0) }]} />
            <Chart title="GPU utilization" unit="%" data={charts.data[3]} xRange={charts.x} y={{ min: 0 }} series={[{ label: 'SM, summed over its GPUs', color: seriesColor(0) }]} />
          </>
        )}
      </div>
    </Page>
  );
}
