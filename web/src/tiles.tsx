// A host's figures and its GPU tiles drawn on one canvas: a fleet update
// repaints pixels only, with no text to lay out (800 DOM tiles cost ten
// times the main thread, and a host's four figures as DOM text a fifth of
// what an update still cost). Each tile is still a link of its own, a box
// in the grid under the canvas with the values in its aria-label, and the
// figures' row holds them in its aria-label, for the keyboard, screen
// readers and clicks.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { BUSY, Gpu, HostStats } from './fleet';
import { bytes, isNum, level, mib, num, pct, rate } from './format';
import { onLinkClick } from './router';

export const TILE_W = 112, TILE_H = 76, GAP = 6;
/** height of a row of host figures */
const STATS_H = 34;

let palette: Record<string, string> | null = null;
function colors(): Record<string, string> {
  if (!palette) {
    const cs = getComputedStyle(document.documentElement);
    palette = {};
    for (const k of ['bg', 'text', 'muted', 'border', 'grid', 'busy', 'idle', 'warn', 'crit'])
      palette[k] = cs.getPropertyValue('--' + k).trim() || '#888';
  }
  return palette;
}
// themes change the custom properties: read them again at the next draw
new MutationObserver(() => (palette = null)).observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });

const memPct = (g: Gpu) =>
  isNum(g.fb_used_mib) && isNum(g.fb_total_mib) && g.fb_total_mib > 0 ? (100 * g.fb_used_mib) / g.fb_total_mib : null;

export const gpuLabel = (g: Gpu) => {
  return `GPU ${g.index} ${g.model}: ${pct(g.util)} busy, memory ${mib(g.fb_used_mib)} of ${mib(g.fb_total_mib)} (${pct(memPct(g))}), ${num(g.temp_c, ' °C')}, ${num(g.power_w, ' W')}`;
};

const share = (used: number | null, total: number | null) => (isNum(used) && isNum(total) && total > 0 ? (100 * used) / total : null);

/** A host's four figures: [name, value, detail for the label]. */
function hostFigures(h: HostStats): [string, string, string][] {
  return [
    ['CPU', pct(h.cpu_percent), ''],
    ['Memory', pct(share(h.mem_used_bytes, h.mem_total_bytes)), `${bytes(h.mem_used_bytes)} of ${bytes(h.mem_total_bytes)}`],
    ['Disk', pct(share(h.disk_used_bytes, h.disk_total_bytes)), `${bytes(h.disk_used_bytes)} of ${bytes(h.disk_total_bytes)}`],
    ['Net', `↓${rate(h.net_rx_bps)} ↑${rate(h.net_tx_bps)}`, ''],
  ];
}

type StatsLayout = { rows: number; at: [number, number][] };

/** Where the figures go in a canvas w wide: one row, or two of two when
 * narrow; the network figure gets the widest column. */
function statsLayout(w: number): StatsLayout {
  if (w >= 360) {
    const c = Math.floor(w / 5);
    return { rows: 1, at: [[0, 0], [c, 0], [2 * c, 0], [3 * c, 0]] };
  }
  const half = Math.floor(w / 2);
  return { rows: 2, at: [[0, 0], [half, 0], [0, STATS_H], [half, STATS_H]] };
}

const tilePos = (i: number, cols: number, y0: number) => [(i % cols) * (TILE_W + GAP), y0 + Math.floor(i / cols) * (TILE_H + GAP)];

/** What does not change between updates (frames, names, models, bar
 * tracks), drawn once per set of GPUs, layout and theme. */
function drawStatic(ctx: CanvasRenderingContext2D, gpus: Gpu[], cols: number, y0: number, stats: StatsLayout | null) {
  const c = colors();
  ctx.textBaseline = 'top';
  ctx.fillStyle = c.bg;
  gpus.forEach((_, i) => {
    const [x, y] = tilePos(i, cols, y0);
    ctx.fillRect(x, y, TILE_W, TILE_H);
  });
  ctx.strokeStyle = c.border;
  gpus.forEach((_, i) => {
    const [x, y] = tilePos(i, cols, y0);
    ctx.strokeRect(x + 0.5, y + 0.5, TILE_W - 1, TILE_H - 1);
  });
  ctx.fillStyle = c.grid;
  gpus.forEach((_, i) => {
    const [x, y] = tilePos(i, cols, y0);
    ctx.fillRect(x + 9, y + 33, TILE_W - 16, 5);
  });
  ctx.fillStyle = c.text;
  ctx.font = '600 11px system-ui, sans-serif';
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols, y0);
    ctx.fillText(`GPU ${g.index}`, x + 9, y + 5);
  });
  ctx.fillStyle = c.muted;
  ctx.font = '10px system-ui, sans-serif';
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols, y0);
    ctx.fillText(g.model.replace(/^NVIDIA (GeForce )?/, '').slice(0, 18), x + 9, y + 19);
  });
  if (stats) ['CPU', 'Memory', 'Disk', 'Net'].forEach((k, i) => ctx.fillText(k, stats.at[i][0], stats.at[i][1] + 2));
}

// Value texts drawn once each and then copied: the same few hundred
// strings ("37%", "312 W") come back every second, and copying a small
// bitmap costs a fraction of laying out and rasterizing the text again.
const stamps = new Map<string, { img: HTMLCanvasElement; w: number; h: number }>();
const STAMPS_MAX = 4000;
let measurer: CanvasRenderingContext2D | null = null;

function stamp(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, font: string, color: string, right = false) {
  const dpr = window.devicePixelRatio || 1;
  const key = `${dpr} ${font} ${color} ${text}`;
  let st = stamps.get(key);
  if (!st) {
    if (stamps.size >= STAMPS_MAX) stamps.clear();
    measurer ??= document.createElement('canvas').getContext('2d')!;
    measurer.font = font;
    const w = Math.ceil(measurer.measureText(text).width) + 1, h = 16;
    const img = document.createElement('canvas');
    img.width = Math.ceil(w * dpr);
    img.height = Math.ceil(h * dpr);
    const c = img.getContext('2d')!;
    c.scale(dpr, dpr);
    c.font = font;
    c.fillStyle = color;
    c.textBaseline = 'top';
    c.fillText(text, 0, 1);
    stamps.set(key, (st = { img, w, h }));
  }
  ctx.drawImage(st.img, right ? x - st.w + 1 : x, y - 1, st.w, st.h);
}

const BOLD = '700 11px ui-monospace, monospace', PLAIN = '11px ui-monospace, monospace';

const FIGURE = '600 12px system-ui, sans-serif';

/** The values over the static layer. */
function drawValues(ctx: CanvasRenderingContext2D, gpus: Gpu[], cols: number, y0: number,
  stats: StatsLayout | null, figures: [string, string, string][] | null) {
  const c = colors();
  if (stats && figures) figures.forEach(([, v], i) => stamp(ctx, v, stats.at[i][0], stats.at[i][1] + 16, FIGURE, c.text));
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols, y0);
    const t = level(g.temp_c, 80, 90), hot = t === 'warn' || t === 'crit';
    ctx.fillStyle = t === 'crit' ? c.crit : t === 'warn' ? c.warn : isNum(g.util) && g.util >= BUSY ? c.busy : c.idle;
    ctx.fillRect(x, y, 4, TILE_H);
    ctx.fillStyle = c.busy;
    ctx.fillRect(x + 9, y + 33, ((TILE_W - 16) * Math.max(0, Math.min(100, g.util ?? 0))) / 100, 5);
    stamp(ctx, pct(g.util), x + 9, y + 43, BOLD, c.text);
    stamp(ctx, num(g.temp_c, '°C'), x + TILE_W - 7, y + 43, PLAIN, hot ? (t === 'crit' ? c.crit : c.warn) : c.text, true);
    stamp(ctx, `mem ${pct(memPct(g))}`, x + 9, y + 58, PLAIN, c.text);
    stamp(ctx, num(g.power_w, ' W'), x + TILE_W - 7, y + 58, PLAIN, c.text, true);
  });
}

interface TilesState {
  cols: number;
  /** the box has a row of host figures over the tiles */
  stats: boolean;
  layer: { key: string; canvas: HTMLCanvasElement } | null;
  /** what each link (and the figures' row, last) shows now: label, class */
  labels: string[];
  classes: string[];
}
const boxes = new WeakMap<HTMLElement, TilesState>();

function setLabel(st: TilesState, i: number, el: Element, label: string) {
  if (st.labels[i] !== label) el.setAttribute('aria-label', (st.labels[i] = label));
}

/** Brings a GpuTiles box up to date with gpus (the same GPUs it was
 * rendered with) and host: the labels and classes where they changed, and
 * the canvas. Called after each render, and by a host card for a value
 * update without rendering anything. */
export function paintTiles(box: HTMLElement, gpus: Gpu[], host: HostStats | null = null) {
  const st = boxes.get(box);
  const cv = box.lastElementChild;
  if (!st || !(cv instanceof HTMLCanvasElement)) return;
  const links = box.children, first = st.stats ? 1 : 0;
  const figures = st.stats && host ? hostFigures(host) : null;
  if (figures) setLabel(st, gpus.length, links[0], figures.map(([k, v, d]) => `${k} ${v}${d ? ` (${d})` : ''}`).join(', '));
  gpus.forEach((g, i) => {
    const a = links[first + i];
    if (!a || a.tagName !== 'A') return;
    const cls = `tile ${isNum(g.util) && g.util >= BUSY ? 'busy' : 'idle'} temp-${level(g.temp_c, 80, 90)}`;
    // a changed class or title costs a style recalculation: the title
    // (the hover tooltip) is set when the pointer comes (showTitle)
    setLabel(st, i, a, gpuLabel(g));
    if (st.classes[i] !== cls) a.className = st.classes[i] = cls;
  });
  const cols = st.cols, rows = Math.ceil(gpus.length / cols);
  const w = cols * (TILE_W + GAP) - GAP;
  const stats = st.stats ? statsLayout(w) : null, y0 = stats ? stats.rows * STATS_H + GAP : 0;
  const h = Math.max(0, y0 + rows * (TILE_H + GAP) - GAP);
  const dpr = window.devicePixelRatio || 1, pw = Math.round(w * dpr), ph = Math.round(h * dpr);
  const key = `${cols} ${pw}x${ph} ${document.documentElement.dataset.theme} ${gpus.map((g) => g.uuid + g.index + g.model).join()}`;
  if (st.layer?.key !== key) {
    const off = document.createElement('canvas');
    off.width = pw;
    off.height = ph;
    const octx = off.getContext('2d')!;
    octx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawStatic(octx, gpus, cols, y0, stats);
    st.layer = { key, canvas: off };
  }
  if (cv.width !== pw || cv.height !== ph) {
    cv.width = pw;
    cv.height = ph;
    cv.style.width = `${w}px`;
    cv.style.height = `${h}px`;
  }
  const ctx = cv.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, pw, ph);
  ctx.drawImage(st.layer.canvas, 0, 0);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawValues(ctx, gpus, cols, y0, stats, figures);
}

function showTitle(e: Event) {
  const a = e.currentTarget as HTMLElement;
  a.title = a.getAttribute('aria-label') ?? '';
}

/** A tile per GPU, each a link to its page, under a row of the host's
 * figures when given host; the values are painted by paintTiles, so an
 * update of values changes no DOM but a few attributes. */
export function GpuTiles({ server, gpus, host }: { server: string; gpus: Gpu[]; host?: HostStats }) {
  const box = useRef<HTMLDivElement>(null);
  const [cols, setCols] = useState(4);
  useEffect(() => {
    const el = box.current!;
    const fit = () => setCols(Math.max(1, Math.floor((el.clientWidth + GAP) / (TILE_W + GAP))));
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const theme = document.documentElement.dataset.theme;
  const stats = host !== undefined;
  const statsRows = stats ? statsLayout(cols * (TILE_W + GAP) - GAP).rows : 0;
  useLayoutEffect(() => {
    const el = box.current!;
    let st = boxes.get(el);
    if (!st) boxes.set(el, (st = { cols, stats, layer: null, labels: [], classes: [] }));
    st.cols = cols;
    st.stats = stats;
    st.labels = []; // the links may be new ones
    st.classes = [];
    paintTiles(el, gpus, host ?? null);
  }, [gpus, cols, theme, host]);
  return (
    // the links are grid items in normal flow and the canvas lies over them
    // (letting clicks through): nothing positioned overlaps the canvas, so
    // the compositor has no overlap to resolve at each update
    <div class="gpu-tiles" ref={box} style={{
      gridTemplateColumns: `repeat(${cols}, ${TILE_W}px)`, gridAutoRows: `${TILE_H}px`, gap: `${GAP}px`,
      gridTemplateRows: stats ? `${statsRows * STATS_H}px` : undefined,
    }}>
      {stats && <div class="host-figures" role="img" onMouseOver={showTitle} />}
      {gpus.map((g) => (
        <a key={g.uuid} href={`/hosts/${encodeURIComponent(server)}/gpus/${encodeURIComponent(g.uuid)}`} onClick={onLinkClick}
          onMouseOver={showTitle} onFocus={showTitle} data-gpu={g.index} />
      ))}
      <canvas aria-hidden="true" />
    </div>
  );
}
