import { render } from 'preact';
import { App } from './App';
import './style.css';
import { fleet } from './fleet';
import { live } from './live';
import { applyTheme } from './theme';
import { stampSelfCheck } from './atlas';
import { TILE_FONTS } from './tiles';

applyTheme();
// the overview draws the whole fleet: read it while signing in is checked
// (other pages ask for their own data first)
if (location.pathname === '/') live.prefetch();
// for the UI test and bench/ui.sh, in the build made for them only
// (vite build --mode test: web/dist-test, served with --ui-dir)
if (import.meta.env.MODE === 'test') (window as any).__gf = { live, fleet, stampSelfCheck: (texts: string[]) => stampSelfCheck(texts, TILE_FONTS) };
render(<App />, document.getElementById('app')!);
