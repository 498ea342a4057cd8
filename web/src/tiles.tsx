// GPU tiles drawn on one canvas per host: a fleet update repaints pixels
// only, with no text to lay out (800 DOM tiles cost ten times the main
// thread). Each tile is still a link of its own, a fixed box over the
// canvas with the values in its aria-label, for the keyboard, screen
// readers and clicks.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Gpu } from './fleet';
import { isNum, level, mib, num, pct } from './format';
import { onLinkClick } from './router';

export const TILE_W = 112, TILE_H = 76, GAP = 6;
const BUSY = 10; // % utilization that counts a GPU as busy

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

const tilePos = (i: number, cols: number) => [(i % cols) * (TILE_W + GAP), Math.floor(i / cols) * (TILE_H + GAP)];

/** What does not change between updates (frames, names, models, bar
 * tracks), drawn once per set of GPUs, layout and theme. */
function drawStatic(ctx: CanvasRenderingContext2D, gpus: Gpu[], cols: number) {
  const c = colors();
  ctx.textBaseline = 'top';
  ctx.fillStyle = c.bg;
  gpus.forEach((_, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillRect(x, y, TILE_W, TILE_H);
  });
  ctx.strokeStyle = c.border;
  gpus.forEach((_, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.strokeRect(x + 0.5, y + 0.5, TILE_W - 1, TILE_H - 1);
  });
  ctx.fillStyle = c.grid;
  gpus.forEach((_, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillRect(x + 9, y + 33, TILE_W - 16, 5);
  });
  ctx.fillStyle = c.text;
  ctx.font = '600 11px system-ui, sans-serif';
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillText(`GPU ${g.index}`, x + 9, y + 5);
  });
  ctx.fillStyle = c.muted;
  ctx.font = '10px system-ui, sans-serif';
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillText(g.model.replace(/^NVIDIA (GeForce )?/, '').slice(0, 18), x + 9, y + 19);
  });
}

/** The values over the static layer; state changes (fonts, colours) are
 * grouped, as each costs a parse. */
function drawValues(ctx: CanvasRenderingContext2D, gpus: Gpu[], cols: number) {
  const c = colors();
  ctx.textBaseline = 'top';
  const edge = (g: Gpu) => {
    const t = level(g.temp_c, 80, 90);
    return t === 'crit' ? c.crit : t === 'warn' ? c.warn : isNum(g.util) && g.util >= BUSY ? c.busy : c.idle;
  };
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillStyle = edge(g);
    ctx.fillRect(x, y, 4, TILE_H);
  });
  ctx.fillStyle = c.busy;
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillRect(x + 9, y + 33, ((TILE_W - 16) * Math.max(0, Math.min(100, g.util ?? 0))) / 100, 5);
  });
  ctx.font = '700 11px ui-monospace, monospace';
  ctx.fillStyle = c.text;
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillText(pct(g.util), x + 9, y + 43);
  });
  ctx.font = '11px ui-monospace, monospace';
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillText(`mem ${pct(memPct(g))}`, x + 9, y + 58);
  });
  ctx.textAlign = 'right';
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    ctx.fillText(num(g.power_w, ' W'), x + TILE_W - 7, y + 58);
  });
  gpus.forEach((g, i) => {
    const [x, y] = tilePos(i, cols);
    const t = level(g.temp_c, 80, 90);
    if (t === 'warn' || t === 'crit') ctx.fillStyle = edge(g);
    ctx.fillText(num(g.temp_c, '°C'), x + TILE_W - 7, y + 43);
    if (t === 'warn' || t === 'crit') ctx.fillStyle = c.text;
  });
  ctx.textAlign = 'left';
}

export function GpuTiles({ server, gpus }: { server: string; gpus: Gpu[] }) {
  const box = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [cols, setCols] = useState(4);
  useEffect(() => {
    const el = box.current!;
    const fit = () => setCols(Math.max(1, Math.floor((el.clientWidth + GAP) / (TILE_W + GAP))));
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const rows = Math.ceil(gpus.length / cols);
  const w = cols * (TILE_W + GAP) - GAP, h = Math.max(0, rows * (TILE_H + GAP) - GAP);
  const layer = useRef<{ key: string; canvas: HTMLCanvasElement } | null>(null);
  const theme = document.documentElement.dataset.theme;
  useLayoutEffect(() => {
    const cv = canvas.current;
    if (!cv) return;
    const dpr = window.devicePixelRatio || 1, pw = Math.round(w * dpr), ph = Math.round(h * dpr);
    const key = `${cols} ${pw}x${ph} ${theme} ${gpus.map((g) => g.uuid + g.index + g.model).join()}`;
    if (layer.current?.key !== key) {
      const off = document.createElement('canvas');
      off.width = pw;
      off.height = ph;
      const octx = off.getContext('2d')!;
      octx.setTransform(dpr, 0, 0, dpr, 0, 0);
      drawStatic(octx, gpus, cols);
      layer.current = { key, canvas: off };
    }
    if (cv.width !== pw || cv.height !== ph) {
      cv.width = pw;
      cv.height = ph;
    }
    const ctx = cv.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, pw, ph);
    ctx.drawImage(layer.current.canvas, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawValues(ctx, gpus, cols);
  }, [gpus, cols, w, h, theme]);
  return (
    // the links are grid items in normal flow and the canvas lies over them
    // (letting clicks through): nothing positioned overlaps the canvas, so
    // the compositor has no overlap to resolve at each update
    <div class="gpu-tiles" ref={box} style={{ gridTemplateColumns: `repeat(${cols}, ${TILE_W}px)`, gridAutoRows: `${TILE_H}px`, gap: `${GAP}px` }}>
      {gpus.map((g) => {
        const t = level(g.temp_c, 80, 90), busy = isNum(g.util) && g.util >= BUSY, label = gpuLabel(g);
        return (
          <a key={g.uuid} href={`/hosts/${encodeURIComponent(server)}/gpus/${encodeURIComponent(g.uuid)}`} onClick={onLinkClick}
            class={`tile ${busy ? 'busy' : 'idle'} temp-${t}`} data-gpu={g.index} aria-label={label} title={label} />
        );
      })}
      <canvas ref={canvas} style={{ width: `${w}px`, height: `${h}px` }} aria-hidden="true" />
    </div>
  );
}
