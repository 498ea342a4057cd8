import { render } from 'preact';
import { App } from './App';
import './style.css';
import { applyTheme } from './theme';

applyTheme();
render(<App />, document.getElementById('app')!);
