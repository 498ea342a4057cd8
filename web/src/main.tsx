import { render } from 'preact';
import { App } from './App';
import './style.css';
import { fleet } from './fleet';
import { live } from './live';
import { applyTheme } from './theme';

applyTheme();
// the overview draws the whole fleet: read it while signing in is checked
// (other pages ask for their own data first)
if (location.pathname === '/') live.prefetch();
(window as any).__gf = { live, fleet };
render(<App />, document.getElementById('app')!);
