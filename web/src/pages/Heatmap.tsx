// Every GPU's utilization over the last hour, one row per GPU and one
// column per minute, drawn as pixels of one ImageData (800 GPUs cost as
// little as 8). The history comes from the store once; the live deltas
// fill the current minute.
import { memo } from 'preact/compat';
import { useEffect, useRef, useState } from 'preact/hooks';
import { queryRange } from '../api';
import { fleet, gpuKey, Server } from '../fleet';
import { navigate } from '../router';
import { Link } from '../ui';

const COLS = 60;
interface Row { sum: Float32Array; cnt: Uint16Array }
const rows = new Map<string, Row>();
let baseMin = Math.floor(Date.now() / 60000) - COLS + 1; // minute of column 0
let loadedAt = 0;

function row(key: string): Row {
  let r = rows.get(key);
  if (!r) rows.set(key, (r = { sum: new Float32Array(COLS), cnt: new Uint16Array(COLS) }));
  return r;
}

function roll(nowMin: number) {
  const shift = nowMin - COLS + 1 - baseMin;
  if (shift <= 0) return;
  rows.forEach((r) => {
    if (shift >= COLS) {
      r.sum.fill(0);
      r.cnt.fill(0);
    } else {
      r.sum.copyWithin(0, shift);
      r.cnt.copyWithin(0, shift);
      r.sum.fill(0, COLS - shift);
      r.cnt.fill(0, COLS - shift);
    }
  });
  baseMin += shift;
}

function add(key: string, tMs: number, v: number) {
  const m = Math.floor(tMs / 60000);
  roll(Math.max(m, Math.floor(Date.now() / 60000)));
  const c = m - baseMin;
  if (c < 0 || c >= COLS) return;
  const r = row(key);
  r.sum[c] += v;
  r.cnt[c]++;
}

// a GPU whose value holds still sends no deltas: sample the state instead
// (the live worker's: the page holds only the values it shows)
const SAMPLE_MS = 5000;
async function sample() {
  for (const [server, uuid, ts, util] of await fleet.utils()) add(gpuKey(server, uuid), ts, util);
}
// sampling runs while a heatmap is shown (the cache stays for the next one)
let shown = 0, sampler = 0;
function startSampling(): () => void {
  if (shown++ === 0)
    sampler = window.setInterval(() => {
      if (loadedAt) sample().catch(() => {});
    }, SAMPLE_MS);
  return () => {
    if (--shown === 0) clearInterval(sampler);
  };
}

async function loadHistory() {
  const end = Math.floor(Date.now() / 1000);
  const r = await queryRange('DCGM_FI_DEV_GPU_UTIL', end - COLS * 60, end, 60, 'avg');
  for (const s of r.series) {
    const key = gpuKey(s.labels.server, s.labels.UUID);
    for (let i = 0; i < s.t.length; i++) if (s.v[i] !== null) add(key, s.t[i] * 1000, s.v[i]!);
  }
  loadedAt = Date.now();
  await sample(); // the current minute at once, not after the first sample
}

// utilization 0..100 to a colour: dark blue (idle) through teal and yellow to red
const stops: [number, number, number][] = [[30, 41, 82], [28, 128, 140], [94, 190, 90], [250, 210, 60], [225, 60, 45]];
function color(u: number): [number, number, number] {
  const t = Math.max(0, Math.min(1, u / 100));
  const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const a = stops[i], b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Redrawn when sampled or when its rows change (shape is the shown
 * servers' names and GPU counts), not at every fleet update. */
export const Heatmap = memo(function Heatmap({ names }: { names: string[]; shape: string }) {
  const servers = names.map((n) => fleet.servers.get(n)).filter((s): s is Server => !!s);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [tick, setTick] = useState(0);
  const [{ idle, pegged, cells }, setStats] = useState({ idle: 0, pegged: 0, cells: 0 });
  const list: { key: string; label: string; server: string; uuid: string }[] = [];
  for (const s of servers) for (const g of s.gpus) list.push({ key: gpuKey(s.name, g.uuid), label: `${s.name} GPU ${g.index}`, server: s.name, uuid: g.uuid });

  useEffect(() => {
    const stopSampling = startSampling();
    if (Date.now() - loadedAt > 30 * 60000) loadHistory().then(() => setTick((n) => n + 1), () => {});
    // redraw what was sampled, while in view (it sits under the host cards)
    let inView = true;
    const io = new IntersectionObserver((es) => {
      const was = inView;
      inView = es[es.length - 1].isIntersecting;
      if (inView && !was) setTick((n) => n + 1);
    });
    io.observe(canvas.current!);
    const t = setInterval(() => inView && setTick((n) => n + 1), SAMPLE_MS);
    return () => {
      clearInterval(t);
      io.disconnect();
      stopSampling();
    };
  }, []);

  const rowH = Math.max(2, Math.min(14, Math.floor(560 / Math.max(1, list.length))));
  // drawn when sampled (every SAMPLE_MS) or when the rows change, not at
  // every fleet update
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    roll(Math.floor(Date.now() / 60000));
    const img = new ImageData(COLS, Math.max(1, list.length));
    const d = img.data;
    let idle = 0, pegged = 0, cells = 0;
    list.forEach((r, y) => {
      const h = rows.get(r.key);
      let n = 0, lo = 0, hi = 0;
      for (let x = 0; x < COLS; x++) {
        if (!h || !h.cnt[x]) continue; // no data: transparent, the background shows
        const u = h.sum[x] / h.cnt[x];
        const [R, G, B] = color(u);
        const o = (y * COLS + x) * 4;
        d[o] = R; d[o + 1] = G; d[o + 2] = B; d[o + 3] = 255;
        n++;
        if (u < 1) lo++;
        if (u > 99) hi++;
      }
      cells += n;
      if (n >= 10 && lo === n) idle++;
      if (n >= 10 && hi === n) pegged++;
    });
    const off = document.createElement('canvas');
    off.width = COLS;
    off.height = Math.max(1, list.length);
    off.getContext('2d')!.putImageData(img, 0, 0);
    const ctx = c.getContext('2d')!;
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, c.width, list.length * rowH);
    setStats({ idle, pegged, cells });
  }, [tick, list.map((r) => r.key).join('\n')]);
  // rows are read off the canvas as drawn (its CSS box), never off the
  // pixels it was given: what is hovered is the row under the pointer
  const at = (e: MouseEvent) => {
    const c = canvas.current!, b = c.getBoundingClientRect();
    const y = Math.floor(((e.clientY - b.top) / b.height) * list.length), x = Math.floor(((e.clientX - b.left) / b.width) * COLS);
    return list[y] && x >= 0 && x < COLS ? { y, x } : null;
  };
  const [cur, setCur] = useState<{ y: number; x: number } | null>(null);
  const p = cur && list[cur.y] ? cur : null;
  const h = p && rows.get(list[p.y].key);
  const readout = p ? `${list[p.y].label}, ${COLS - 1 - p.x === 0 ? 'this minute' : `${COLS - 1 - p.x} min ago`}: ${h && h.cnt[p.x] ? Math.round(h.sum[p.x] / h.cnt[p.x]) + '%' : 'no data'}` : '';
  const open = (y: number) => navigate(`/hosts/${encodeURIComponent(list[y].server)}/gpus/${encodeURIComponent(list[y].uuid)}`);
  const key = (e: KeyboardEvent) => {
    const q = p ?? { y: 0, x: COLS - 1 };
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], Home: [0, -COLS], End: [0, COLS] };
    if (e.key === 'Enter' && list[q.y]) return open(q.y);
    const m = moves[e.key];
    if (!m || !list.length) return;
    e.preventDefault();
    setCur({ y: Math.max(0, Math.min(list.length - 1, q.y + (p ? m[0] : 0))), x: Math.max(0, Math.min(COLS - 1, q.x + m[1])) });
  };
  const height = Math.max(1, list.length * rowH);
  return (
    <section class="card heatmap" aria-labelledby="heat-title">
      <header>
        <h2 id="heat-title">GPU utilization, last hour</h2>
        <span class="muted">{list.length} GPUs · idle all hour: {idle} · at 100% all hour: {pegged}</span>
      </header>
      <div class="heat-wrap">
        {rowH >= 10 && (
          <div class="heat-labels" style={{ fontSize: `${Math.min(12, rowH - 1)}px` }}>
            {list.map((r, y) => <div style={{ height: `${rowH}px` }} data-row={y}><Link href={`/hosts/${encodeURIComponent(r.server)}/gpus/${encodeURIComponent(r.uuid)}`}>{r.label}</Link></div>)}
          </div>
        )}
        <div class="heat-canvas" style={{ height: `${height}px` }}>
          <canvas ref={canvas} width={600} height={height} role="img" tabIndex={0} data-testid="heatmap" data-cells={cells} data-rows={list.length}
            aria-label={`Utilization heatmap of ${list.length} GPUs over the last hour; ${idle} idle and ${pegged} at 100% the whole hour. Arrow keys move through it, Enter opens a GPU.`}
            aria-describedby="heat-readout"
            style={{ height: `${height}px` }}
            onMouseMove={(e) => setCur(at(e))}
            onMouseLeave={() => setCur(null)}
            onBlur={() => setCur(null)}
            onKeyDown={key}
            onClick={(e) => {
              const q = at(e);
              if (q) open(q.y);
            }} />
          {p && <div class="heat-cursor" aria-hidden="true" style={{ top: `${p.y * rowH}px`, height: `${rowH}px` }} />}
        </div>
      </div>
      <div class="heat-axis muted" aria-hidden="true"><span>60 min ago</span><span>now</span></div>
      <div class="heat-foot">
        <div class="heat-legend" aria-label="Colour scale: dark blue 0 %, teal, green, yellow, red 100 %; grey: no data">
          <span>0%</span><span class="heat-scale" /><span>100%</span><span class="heat-nodata" /> <span>no data</span>
        </div>
        <output id="heat-readout" data-testid="heat-readout" aria-live="polite">{readout}</output>
      </div>
    </section>
  );
}, (a, b) => a.shape === b.shape);
