import { render } from 'preact';
import { App } from './App';
import './style.css';
import { live } from './live';
import { applyTheme } from './theme';

applyTheme();
(window as any).__gf = { live };
render(<App />, document.getElementById('app')!);
