// A text atlas for canvases that draw the same short texts again and again
// (the GPU tiles): value texts drawn once each into an atlas and then copied: the same few
// hundred strings ("37%", "312 W") come back every second, and copying a
// small bitmap costs a fraction of laying out and rasterizing the text
// again. The atlas is pages of a few strips each; a canvas drawn from after
// a change is copied whole first, so a paint adds its missing texts before
// it copies any (see stampAll), and pages stay small.
const PAGE_W = 512, PAGE_H = 128, STAMP_H = 16, PAGES_MAX = 32;
/** page, x, y, width of the box (the text is 1 px in), the text's advance */
type Slot = [HTMLCanvasElement, number, number, number, number];
let pages: { ctx: CanvasRenderingContext2D; x: number; y: number }[] = [];
let slots = new Map<string, Slot>();
let pagesDpr = 0;
let measurer: CanvasRenderingContext2D | null = null;

function addStamp(key: string, text: string, font: string, color: string, dpr: number): Slot {
  let pg = pages[pages.length - 1];
  measurer ??= document.createElement('canvas').getContext('2d')!;
  measurer.font = font;
  const advance = measurer.measureText(text).width;
  // a pixel of room before the text and two after, for glyphs that reach
  // past their advance
  const w = Math.min(PAGE_W, Math.ceil(advance) + 3);
  if (pg.x + w > PAGE_W) {
    pg.x = 0;
    pg.y += STAMP_H;
  }
  if (pg.y + STAMP_H > PAGE_H) {
    if (pages.length >= PAGES_MAX) { // a long-open page: start over
      pages = [];
      slots = new Map();
    }
    const cv = document.createElement('canvas');
    cv.width = PAGE_W * dpr;
    cv.height = PAGE_H * dpr;
    const ctx = cv.getContext('2d')!;
    ctx.scale(dpr, dpr);
    ctx.textBaseline = 'top';
    pages.push((pg = { ctx, x: 0, y: 0 }));
  }
  if (pg.ctx.font !== font) pg.ctx.font = font;
  pg.ctx.fillStyle = color;
  pg.ctx.fillText(text, pg.x + 1, pg.y + 1);
  const slot: Slot = [pg.ctx.canvas, pg.x, pg.y, w, advance];
  slots.set(key, slot);
  pg.x += w + 1;
  return slot;
}

/** One text to draw: text, x, y, font, colour, right-aligned at x. */
export type Stamp = [string, number, number, string, string, boolean];

export function stampAll(ctx: CanvasRenderingContext2D, list: Stamp[]) {
  const dpr = window.devicePixelRatio || 1;
  if (pagesDpr !== dpr || !pages.length) {
    pages = [];
    slots = new Map();
    pagesDpr = dpr;
    pages.push({ ctx: null as unknown as CanvasRenderingContext2D, x: PAGE_W, y: PAGE_H }); // full: the first add makes one
  }
  const got = list.map(([text, , , font, color]) => {
    const key = font + '\u0000' + color + '\u0000' + text;
    return slots.get(key) ?? addStamp(key, text, font, color, dpr);
  });
  list.forEach(([, x, y, , , right], i) => {
    const [page, sx, sy, w, advance] = got[i];
    // whole pixels: a copy to a fraction of one would blur the text
    const left = Math.round(right ? x - advance : x) - 1;
    ctx.drawImage(page, sx * dpr, sy * dpr, w * dpr, STAMP_H * dpr, left, y - 1, w, STAMP_H);
  });
}

/** Draws texts in the app's fonts through the atlas and with fillText and
 * returns how many pixels differ (the UI test expects none): the atlas
 * must give what the text itself would. */
export function stampSelfCheck(texts: string[], fonts: string[]): number {
  const dpr = window.devicePixelRatio || 1, W = 160, H = 20;
  let bad = 0;
  for (const font of fonts) {
    for (const text of texts) {
      const pair = [0, 1].map(() => {
        const cv = document.createElement('canvas');
        cv.width = W * dpr;
        cv.height = H * dpr;
        const c = cv.getContext('2d')!;
        c.scale(dpr, dpr);
        return c;
      });
      stampAll(pair[0], [[text, 5, 2, font, '#123456', false]]);
      pair[1].font = font;
      pair[1].fillStyle = '#123456';
      pair[1].textBaseline = 'top';
      pair[1].fillText(text, 5, 2);
      const [a, b] = pair.map((c) => c.getImageData(0, 0, W * dpr, H * dpr).data);
      for (let i = 0; i < a.length; i += 4)
        if (Math.abs(a[i + 3] - b[i + 3]) > 8 || Math.abs(a[i] - b[i]) > 8) bad++;
    }
  }
  return bad;
}
