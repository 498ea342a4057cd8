// Dark and light themes: the system's unless the user picked one here.
export type Theme = 'system' | 'dark' | 'light';

export function theme(): Theme {
  const t = localStorage.getItem('gpufleet.theme');
  return t === 'dark' || t === 'light' ? t : 'system';
}

export function applyTheme() {
  const t = theme();
  const dark = t === 'dark' || (t === 'system' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

export function setTheme(t: Theme) {
  if (t === 'system') localStorage.removeItem('gpufleet.theme');
  else localStorage.setItem('gpufleet.theme', t);
  applyTheme();
}

matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
