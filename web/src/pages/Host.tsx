// One host: its GPUs live, the processes on them with their containers,
// host charts (CPU, memory, network) over a chosen range, and its GPUs
// compared side by side with their processes' memory over time.
import { useEffect, useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { get, qs, queryRange, selValue } from '../api';
import { align, Chart, niceStep, seriesColor } from '../chart';
import { fleet } from '../fleet';
import { bytes, mib, num, pct, rate } from '../format';
import { Link, Page, RangeChips, rangeSeconds, useAsync } from '../ui';
import { useFleet, useWant } from '../hooks';
import { GpuTiles } from '../tiles';
import { OfflineNote } from '../offline';
import { HostGpus } from './HostGpus';

/** Sums the series of a query point by point (per-CPU or per-device rates). */
function sum(series: { t: number[]; v: (number | null)[] }[]): { t: number[]; v: (number | null)[] } {
  const acc = new Map<number, number>();
  for (const s of series) s.t.forEach((t, i) => s.v[i] !== null && acc.set(t, (acc.get(t) ?? 0) + s.v[i]!));
  const t = [...acc.keys()].sort((a, b) => a - b);
  return { t, v: t.map((x) => acc.get(x)!) };
}

export function HostPage({ name }: { name: string }) {
  useFleet();
  useWant(name);
  const s = fleet.servers.get(name);
  const [range, setRange] = useState('1h');
  const [charts, setCharts] = useState<uPlot.AlignedData[] | null>(null);
  const end = useMemo(() => Math.floor(Date.now() / 1000), [range, name]);
  const procs = useAsync(() => get<any>('/api/v1/latest' + qs({ match: 'gpufleet_gpu_process_memory_bytes', server: name })), [name]);

  useEffect(() => {
    let alive = true;
    const span = rangeSeconds(range);
    const start = end - span, step = Math.max(niceStep(span, 360), 2);
    const sel = (m: string, extra = '') => `${m}{server="${selValue(name)}"${extra}}`;
    Promise.all([
      queryRange(sel('node_cpu_seconds_total', ',mode=~"idle|iowait"'), start, end, step, 'rate'),
      queryRange(sel('node_cpu_seconds_total', ',mode="user"'), start, end, step, 'count'),
      queryRange(sel('node_memory_MemAvailable_bytes'), start, end, step),
      queryRange(sel('node_memory_MemTotal_bytes'), start, end, step),
      queryRange(sel('node_network_receive_bytes_total', ',device!="lo"'), start, end, step, 'rate'),
      queryRange(sel('node_network_transmit_bytes_total', ',device!="lo"'), start, end, step, 'rate'),
    ]).then(([idle, cpus, avail, total, rx, tx]) => {
      if (!alive) return;
      const ncpu = cpus.series.length || 1;
      const idleSum = sum(idle.series);
      const cpu = { t: idleSum.t, v: idleSum.v.map((v) => (v === null ? null : Math.max(0, Math.min(100, 100 * (1 - v / ncpu))))) };
      const a = sum(avail.series), tot = sum(total.series);
      const totAt = new Map(tot.t.map((t, i) => [t, tot.v[i]]));
      const used = { t: a.t, v: a.t.map((t, i) => (totAt.has(t) && a.v[i] !== null ? totAt.get(t)! - a.v[i]! : null)) };
      setCharts([align([cpu]), align([used, tot]), align([sum(rx.series), sum(tx.series)])]);
    }, () => alive && setCharts(null));
    return () => {
      alive = false;
    };
  }, [name, range]);

  const h = s?.host;
  const rows: any[] = procs.data?.data?.result ?? [];
  if (!s && fleet.loaded)
    return (
      <Page title={name} actions={<Link href="/">← Fleet</Link>}>
        <p class="error" role="alert">No server named {name} is registered. <Link href="/servers">The servers</Link> lists those that are.</p>
      </Page>
    );
  return (
    <Page title={name} actions={<Link href="/">← Fleet</Link>}>
      {s && h && (
        <dl class="totals" aria-label="host">
          <div><dt>Status</dt><dd><span class={`badge ${s.online ? 'online' : 'offline'}`}>{s.online ? 'online' : s.online === false ? 'offline' : 'unknown'}</span></dd></div>
          <div><dt>Address</dt><dd>{s.address}:{s.agent_port}</dd></div>
          <div><dt>CPU</dt><dd>{pct(h.cpu_percent)} (load {num(h.load1, '', 2)})</dd></div>
          <div><dt>Memory</dt><dd>{bytes(h.mem_used_bytes)} / {bytes(h.mem_total_bytes)}</dd></div>
          <div><dt>Disk /</dt><dd>{bytes(h.disk_used_bytes)} / {bytes(h.disk_total_bytes)}</dd></div>
          <div><dt>Network</dt><dd>↓{rate(h.net_rx_bytes_per_second)} ↑{rate(h.net_tx_bytes_per_second)}</dd></div>
        </dl>
      )}
      {s && <OfflineNote s={s} />}
      {s && s.gpus.length > 0 && <GpuTiles server={name} gpus={s.gpus} />}
      <h2>GPU processes</h2>
      <table class="table" aria-label="GPU processes">
        <thead><tr><th>GPU</th><th>PID</th><th>Process</th><th>User</th><th>Container</th><th>Type</th><th>GPU memory</th></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr>
              <td>{r.metric.gpu}</td><td>{r.metric.pid}</td><td>{r.metric.process_name}</td><td>{r.metric.user}</td>
              <td class="mono">{r.metric.container_id ? r.metric.container_id.slice(0, 12) : '–'}</td><td>{r.metric.type}</td>
              <td>{mib(parseFloat(r.value[1]) / 1048576)}</td>
            </tr>
          ))}
          {rows.length === 0 && <tr><td colSpan={7} class="muted">{procs.loading ? 'Loading…' : procs.error || (s && s.online === false ? 'The host is offline: its processes are not known.' : s && s.online === null ? 'Not scraped yet.' : 'No processes on the GPUs.')}</td></tr>}
        </tbody>
      </table>
      <button type="button" onClick={procs.reload}>Refresh processes</button>
      <div class="filters" role="group" aria-label="time range">
        <RangeChips value={range} onPick={setRange} />
      </div>
      <div class="charts">
        {charts && (
          <>
            <Chart title="CPU" unit="%" data={charts[0]} y={{ min: 0, max: 100 }} series={[{ label: 'busy', color: seriesColor(0) }]} />
            <Chart title="Memory" unit="" data={charts[1]} fmt={(v) => bytes(v)} binary y={{ min: 0, maxOf: 1 }} series={[{ label: 'used', color: seriesColor(0) }, { label: 'total', color: seriesColor(1) }]} />
            <Chart title="Network" unit="" data={charts[2]} fmt={rate} binary y={{ min: 0 }} series={[{ label: 'receive', color: seriesColor(0) }, { label: 'transmit', color: seriesColor(1) }]} />
          </>
        )}
      </div>
      {s && <HostGpus server={name} gpus={s.gpus} start={end - rangeSeconds(range)} end={end} />}
    </Page>
  );
}
