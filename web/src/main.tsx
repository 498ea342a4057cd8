import { render } from 'preact';
import { App } from './App';
import './style.css';
import { fleet } from './fleet';
import { live } from './live';
import { applyTheme } from './theme';

applyTheme();
live.prefetch();
(window as any).__gf = { live, fleet };
render(<App />, document.getElementById('app')!);
