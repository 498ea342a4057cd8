import { render } from 'preact';
import { App } from './App';
import './style.css';
import { fleet } from './fleet';
import { live } from './live';
import { applyTheme } from './theme';
import { stampSelfCheck } from './tiles';

applyTheme();
// the overview draws the whole fleet: read it while signing in is checked
// (other pages ask for their own data first)
if (location.pathname === '/') live.prefetch();
// for the UI test and bench/ui.sh
(window as any).__gf = { live, fleet, stampSelfCheck };
render(<App />, document.getElementById('app')!);
