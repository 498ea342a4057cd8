// A shell in the browser, inside a container or on a host (admins, over
// SSH): xterm.js (loaded when first opened) on a WebSocket whose binary
// frames are the TTY's bytes both ways; resizes follow the element's size.
// The session ends with the shell, the container, the page, or the
// credential that opened it.
import { useEffect, useRef, useState } from 'preact/hooks';

const wsURL = (path: string) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;

/** path: the WebSocket's path (rows and cols are added). */
export function Terminal({ path, title, onClose }: { path: string; title: string; onClose: () => void }) {
  const box = useRef<HTMLDivElement>(null);
  const [state, setState] = useState('opening');

  useEffect(() => {
    const t0 = performance.now();
    let done = false;
    let cleanup = () => {};
    Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit'), import('@xterm/xterm/css/xterm.css')]).then(([{ Terminal }, { FitAddon }]) => {
      if (done) return;
      const el = box.current!;
      const term = new Terminal({ cursorBlink: true, fontSize: 13, scrollback: 5000, convertEol: false });
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.open(el);
      fit.fit();
      const ws = new WebSocket(wsURL(`${path}?rows=${term.rows}&cols=${term.cols}`));
      ws.binaryType = 'arraybuffer';
      const enc = new TextEncoder();
      let first = true;
      ws.onopen = () => setState('connected');
      ws.onmessage = (ev) => {
        if (first) {
          // the first byte after the click, for tests and the bench
          el.dataset.firstByteMs = String(Math.round(performance.now() - t0));
          first = false;
        }
        term.write(typeof ev.data === 'string' ? ev.data : new Uint8Array(ev.data));
      };
      ws.onclose = (ev) => {
        setState(`ended: ${ev.reason || `closed (${ev.code})`}`);
        term.options.disableStdin = true;
      };
      const input = term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
      const resized = term.onResize(({ rows, cols }) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: 'resize', rows, cols })));
      const ro = new ResizeObserver(() => fit.fit());
      ro.observe(el);
      term.focus();
      (el as any).__term = term; // tests read the screen through it
      cleanup = () => {
        ro.disconnect();
        input.dispose();
        resized.dispose();
        ws.close();
        term.dispose();
      };
    }, (e) => setState(`could not load the terminal: ${e}`));
    return () => {
      done = true;
      cleanup();
    };
  }, [path]);

  return (
    <section class="panel terminal" aria-label="terminal">
      <div class="filters">
        <strong>{title}</strong>
        <span class="small" data-testid="term-state">{state}</span>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      <div ref={box} class="term-box" data-testid="term" />
    </section>
  );
}
