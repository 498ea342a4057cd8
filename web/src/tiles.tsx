// A host's figures and its GPU tiles drawn on one canvas: a fleet update
// repaints pixels only, with no text to lay out (800 DOM tiles cost ten
// times the main thread, and a host's four figures as DOM text a fifth of
// what an update still cost). Each tile is still a link of its own, a box
// in the grid under the canvas with the values in its aria-label, and the
// figures' row holds them in its aria-label, for the keyboard, screen
// readers and clicks.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { BUSY, Gpu, gpusShape, HostStats } from './fleet';
import { bytes, isNum, level, mib, num, pct, rate } from './format';
import { onLinkClick } from './router';
import { Stamp, stampAll } from './atlas';
import { cssVar, onThemeChange } from './theme';

export const TILE_W = 112, TILE_H = 76, GAP = 6;
/** height of a row of host figures */
const STATS_H = 34;

let palette: Record<string, string> | null = null;
let followsTheme = false;
function colors(): Record<string, string> {
  if (!followsTheme) { // themes change the custom properties: read them again then
    followsTheme = true;
    onThemeChange(() => (palette = null));
  }
  if (!palette) {
    palette = {};
    for (const k of ['bg', 'text', 'muted', 'border', 'grid', 'busy', 'idle', 'warn', 'crit']) palette[k] = cssVar('--' + k);
  }
  return palette;
}

const share = (used: number | null, total: number | null) => (isNum(used) && isNum(total) && total > 0 ? (100 * used) / total : null);
const memPct = (g: Gpu) => share(g.fb_used_mib, g.fb_total_mib);

export const gpuLabel = (g: Gpu) => {
  return `GPU ${g.index} ${g.model}: ${pct(g.util_percent)} busy, memory ${mib(g.fb_used_mib)} of ${mib(g.fb_total_mib)} (${pct(memPct(g))}), ${num(g.temp_celsius, ' °C')}, ${num(g.power_watts, ' W')}`;
};

/** A host's four figures: [name, value, detail for the label]. */
function hostFigures(h: HostStats): [string, string, string][] {
  return [
    ['CPU', pct(h.cpu_percent), ''],
    ['Memory', pct(share(h.mem_used_bytes, h.mem_total_bytes)), `${bytes(h.mem_used_bytes)} of ${bytes(h.mem_total_bytes)}`],
    ['Disk', pct(share(h.disk_used_bytes, h.disk_total_bytes)), `${bytes(h.disk_used_bytes)} of ${bytes(h.disk_total_bytes)}`],
    ['Net', `↓${rate(h.net_rx_bytes_per_second)} ↑${rate(h.net_tx_bytes_per_second)}`, ''],
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

/** The canvas of cols tile columns for n GPUs (and the figures' row). */
function tilesSize(cols: number, n: number, withStats: boolean) {
  const w = cols * (TILE_W + GAP) - GAP;
  const stats = withStats ? statsLayout(w) : null, y0 = stats ? stats.rows * STATS_H + GAP : 0;
  const h = Math.max(0, y0 + Math.ceil(n / cols) * (TILE_H + GAP) - GAP);
  return { w, h, y0, stats };
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

const BOLD = '700 11px ui-monospace, monospace', PLAIN = '11px ui-monospace, monospace', FIGURE = '600 12px system-ui, sans-serif';
/** The fonts tile texts are stamped in (the UI test checks the atlas in each). */
export const TILE_FONTS = [BOLD, PLAIN, FIGURE];


/** The values over the static layer. */
function drawValues(ctx: CanvasRenderingContext2D, gpus: Gpu[], cols: number, y0: number,
  stats: StatsLayout | null, figures: [string, string, string][] | null) {
  const c = colors();
  const texts: Stamp[] = [];
  if (stats && figures) figures.forEach(([, v], i) => texts.push([v, stats.at[i][0], stats.at[i][1] + 16, FIGURE, c.text, false]));
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols, y0);
    const t = level(g.temp_celsius, 80, 90), hot = t === 'warn' || t === 'crit';
    ctx.fillStyle = t === 'crit' ? c.crit : t === 'warn' ? c.warn : isNum(g.util_percent) && g.util_percent >= BUSY ? c.busy : c.idle;
    ctx.fillRect(x, y, 4, TILE_H);
    ctx.fillStyle = c.busy;
    ctx.fillRect(x + 9, y + 33, ((TILE_W - 16) * Math.max(0, Math.min(100, g.util_percent ?? 0))) / 100, 5);
    texts.push([pct(g.util_percent), x + 9, y + 43, BOLD, c.text, false],
      [num(g.temp_celsius, '°C'), x + TILE_W - 7, y + 43, PLAIN, hot ? (t === 'crit' ? c.crit : c.warn) : c.text, true],
      [`mem ${pct(memPct(g))}`, x + 9, y + 58, PLAIN, c.text, false],
      [num(g.power_watts, ' W'), x + TILE_W - 7, y + 58, PLAIN, c.text, true]);
  });
  stampAll(ctx, texts);
}

interface TilesState {
  cols: number;
  /** the box has a row of host figures over the tiles */
  stats: boolean;
  layer: { key: string; canvas: HTMLCanvasElement } | null;
  /** what each link (and the figures' row, last) shows now: label, class */
  labels: string[];
  classes: string[];
  /** the box is in or near the view: its canvas is drawn */
  near: boolean;
  /** what to draw when it comes near */
  last: { gpus: Gpu[]; host: HostStats | null } | null;
}
const boxes = new WeakMap<HTMLElement, TilesState>();

// A lazy box's canvas is drawn only near the view (a fleet's first
// overview draws a screenful of hosts, not all of them): boxes rendered in
// one go are measured together after it, in one layout; later their owner
// says when they come near or go (setNear, from its own observer). Near is
// in view: every card drawn ahead of a scroll would be drawn every second.
export const NEAR_PX = 0;
let measuring: HTMLElement[] = [];
function measure() {
  const list = measuring;
  measuring = [];
  const rects = list.map((b) => b.getBoundingClientRect());
  list.forEach((box, i) => {
    if (box.isConnected) setNear(box, rects[i].bottom > -NEAR_PX && rects[i].top < window.innerHeight + NEAR_PX);
  });
}

/** The box is near the view, or not: drawn now if it has values waiting. */
export function setNear(box: HTMLElement, near: boolean) {
  const st = boxes.get(box);
  if (!st) return;
  st.near = near;
  if (near && st.last) draw(box, st);
}

function setLabel(st: TilesState, i: number, el: Element, label: string) {
  if (st.labels[i] !== label) el.setAttribute('aria-label', (st.labels[i] = label));
}

/** Brings a GpuTiles box up to date with gpus (the same GPUs it was
 * rendered with) and host: the labels and classes where they changed, and
 * the canvas when the box is near the view (else once it comes). Called
 * after each render, and by a host card for a value update without
 * rendering anything. */
export function paintTiles(box: HTMLElement, gpus: Gpu[], host: HostStats | null = null) {
  const st = boxes.get(box);
  if (!st) return;
  const links = box.children, first = st.stats ? 1 : 0;
  if (st.stats && host)
    setLabel(st, gpus.length, links[0], hostFigures(host).map(([k, v, d]) => `${k} ${v}${d ? ` (${d})` : ''}`).join(', '));
  gpus.forEach((g, i) => {
    const a = links[first + i];
    if (!a || a.tagName !== 'A') return;
    const cls = `tile ${isNum(g.util_percent) && g.util_percent >= BUSY ? 'busy' : 'idle'} temp-${level(g.temp_celsius, 80, 90)}`;
    // a changed class or title costs a style recalculation: the title
    // (the hover tooltip) is set when the pointer comes (showTitle)
    setLabel(st, i, a, gpuLabel(g));
    if (st.classes[i] !== cls) a.className = st.classes[i] = cls;
  });
  st.last = { gpus, host };
  if (st.near) draw(box, st);
}

function draw(box: HTMLElement, st: TilesState) {
  const cv = box.lastElementChild;
  if (!(cv instanceof HTMLCanvasElement) || !st.last) return;
  const { gpus, host } = st.last;
  st.last = null;
  const cols = st.cols;
  const { w, h, y0, stats } = tilesSize(cols, gpus.length, st.stats);
  const dpr = window.devicePixelRatio || 1, pw = Math.round(w * dpr), ph = Math.round(h * dpr);
  const key = `${cols} ${pw}x${ph} ${document.documentElement.dataset.theme} ${gpusShape(gpus)}`;
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
    cv.width = pw; // its CSS size is rendered: no layout to redo here
    cv.height = ph;
  }
  const ctx = cv.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, pw, ph);
  ctx.drawImage(st.layer.canvas, 0, 0);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawValues(ctx, gpus, cols, y0, stats, st.stats && host ? hostFigures(host) : null);
}

function showTitle(e: Event) {
  const a = e.currentTarget as HTMLElement;
  a.title = a.getAttribute('aria-label') ?? '';
}

/** A tile per GPU, each a link to its page, under a row of the host's
 * figures when given host; the values are painted by paintTiles, so an
 * update of values changes no DOM but a few attributes. */
export function GpuTiles({ server, gpus, host, latest, lazy }: {
  server: string;
  gpus: Gpu[];
  host?: HostStats;
  /** drawn only near the view (see setNear) */
  lazy?: boolean;
  /** the current values, when the owner paints them without rendering
   * this (a render of its own, for a new width, must not draw older props) */
  latest?: () => { gpus: Gpu[]; host: HostStats } | null;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [cols, setCols] = useState(4);
  useEffect(() => {
    // its first report comes with the next frame's layout: reading
    // clientWidth here would lay out the page once per box
    const ro = new ResizeObserver((es) => setCols(Math.max(1, Math.floor((es[0].contentRect.width + GAP) / (TILE_W + GAP)))));
    ro.observe(box.current!);
    return () => ro.disconnect();
  }, []);
  const theme = document.documentElement.dataset.theme;
  const stats = host !== undefined;
  const size = tilesSize(cols, gpus.length, stats);
  useLayoutEffect(() => {
    const el = box.current!;
    let st = boxes.get(el);
    if (!st) {
      boxes.set(el, (st = { cols, stats, layer: null, labels: [], classes: [], near: !lazy, last: null }));
      if (lazy) {
        if (!measuring.length) queueMicrotask(measure); // after the render's last box
        measuring.push(el);
      }
    }
    st.cols = cols;
    st.stats = stats;
    st.labels = []; // the links may be new ones
    st.classes = [];
    const now = latest?.();
    paintTiles(el, now?.gpus ?? gpus, now?.host ?? host ?? null);
  }, [gpus, cols, theme, host]);
  return (
    // the links are grid items in normal flow and the canvas lies over them
    // (letting clicks through): nothing positioned overlaps the canvas, so
    // the compositor has no overlap to resolve at each update
    <div class="gpu-tiles" ref={box} style={{
      gridTemplateColumns: `repeat(${cols}, ${TILE_W}px)`, gridAutoRows: `${TILE_H}px`, gap: `${GAP}px`,
      gridTemplateRows: size.stats ? `${size.stats.rows * STATS_H}px` : undefined,
    }}>
      {stats && <div class="host-figures" role="img" onMouseOver={showTitle} />}
      {gpus.map((g) => (
        <a key={g.uuid} href={`/hosts/${encodeURIComponent(server)}/gpus/${encodeURIComponent(g.uuid)}`} onClick={onLinkClick}
          onMouseOver={showTitle} onFocus={showTitle} data-gpu={g.index} />
      ))}
      <canvas aria-hidden="true" style={{ width: `${size.w}px`, height: `${size.h}px` }} />
    </div>
  );
}
