// Dark and light themes: the system's unless the user picked one here.
export type Theme = 'system' | 'dark' | 'light';

export function theme(): Theme {
  const t = localStorage.getItem('gpufleet.theme');
  return t === 'dark' || t === 'light' ? t : 'system';
}

const changed = new Set<() => void>();
let following = false;

/** Sets the page's theme; the first call also starts following the
 * system's (main.tsx calls it once, at start). */
export function applyTheme() {
  const t = theme();
  const dark = t === 'dark' || (t === 'system' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  changed.forEach((fn) => fn());
  if (!following) {
    following = true;
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
  }
}

/** Calls fn after every change of theme. */
export function onThemeChange(fn: () => void): () => void {
  changed.add(fn);
  return () => changed.delete(fn);
}

/** A colour (or any custom property) of the current theme: the one place
 * the page's CSS is read from script (canvas tiles, charts). */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

export function setTheme(t: Theme) {
  if (t === 'system') localStorage.removeItem('gpufleet.theme');
  else localStorage.setItem('gpufleet.theme', t);
  applyTheme();
}

