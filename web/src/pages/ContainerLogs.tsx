// A container's logs, followed live over a WebSocket: the server sends
// batches of text chunks tagged stdout or stderr; lines are appended to the
// view straight into the DOM (a few thousand kept: old lines leave the view,
// never the download), at most once a frame and a few nodes a batch, so a container printing
// thousands of lines a second keeps the page responsive.
import { useEffect, useRef, useState } from 'preact/hooks';

const MAX_LINES = 5000;
const wsURL = (path: string) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;

interface Msg { type: 'logs' | 'end'; chunks?: ['o' | 'e', string][]; reason?: string }

export function ContainerLogs({ id, name, running }: { id: number; name: string; running: boolean }) {
  const view = useRef<HTMLDivElement>(null);
  const [state, setState] = useState('connecting');
  const [paused, setPaused] = useState(false);
  const [show, setShow] = useState<'both' | 'stdout' | 'stderr'>('both');
  const [gen, setGen] = useState(0); // bumped to reconnect
  const pausedRef = useRef(false);
  const [dropped, setDropped] = useState(0);
  pausedRef.current = paused;

  useEffect(() => {
    const el = view.current!;
    el.textContent = '';
    delete el.dataset.lines;
    const carry = { o: '', e: '' };
    let pending: [string, string][] = [];
    let frame = 0, skipped = 0, total = 0;
    const ws = new WebSocket(wsURL(`/api/v1/containers/${id}/logs/live?tail=500`));
    let inView = 0;
    const draw = () => {
      frame = 0;
      const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      // one element per batch, one span per run of a stream: a few nodes
      // for thousands of lines, so layout stays cheap
      const chunk = document.createElement('div');
      const lines = pending.slice(-MAX_LINES);
      let run: string[] = [], runS = '';
      const close = () => {
        if (!run.length) return;
        const span = document.createElement('span');
        span.className = runS === 'e' ? 'log-err' : 'log-out';
        span.textContent = run.join('\n') + '\n';
        chunk.appendChild(span);
        run = [];
      };
      for (const [s, line] of lines) {
        if (s !== runS) close();
        runS = s;
        run.push(line);
      }
      close();
      chunk.dataset.n = String(lines.length);
      pending = [];
      el.appendChild(chunk);
      inView += lines.length;
      while (el.firstElementChild && inView - Number((el.firstElementChild as HTMLElement).dataset.n) >= MAX_LINES) {
        inView -= Number((el.firstElementChild as HTMLElement).dataset.n);
        el.firstElementChild.remove();
      }
      el.dataset.lines = String(total);
      el.dataset.inView = String(inView);
      if (atBottom) el.scrollTop = el.scrollHeight;
    };
    const add = (s: 'o' | 'e', text: string) => {
      const parts = (carry[s] + text).split('\n');
      carry[s] = parts.pop()!;
      for (const line of parts) {
        total++;
        if (pausedRef.current) {
          skipped++;
          continue;
        }
        pending.push([s, line]);
      }
      if (pending.length > MAX_LINES) pending = pending.slice(-MAX_LINES);
    };
    ws.onopen = () => setState('following');
    ws.onmessage = (ev) => {
      const m: Msg = JSON.parse(ev.data);
      if (m.type === 'logs') m.chunks!.forEach(([s, t]) => add(s, t));
      else if (m.type === 'end') {
        (['o', 'e'] as const).forEach((s) => carry[s] && add(s, carry[s] + '\n'));
        setState(m.reason ?? 'ended');
      }
      if (skipped) setDropped(skipped);
      if (pending.length && !frame) frame = requestAnimationFrame(draw);
    };
    ws.onclose = (ev) => setState((s) => (s === 'following' || s === 'connecting' ? (ev.reason || `closed (${ev.code})`) : s));
    return () => {
      ws.close();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [id, gen]);

  useEffect(() => {
    const el = view.current!; // a new filter starts at the newest lines
    el.scrollTop = el.scrollHeight;
  }, [show]);

  return (
    <section class="panel logs" aria-label="logs">
      <div class="filters" role="group" aria-label="log controls">
        <strong>Logs</strong>
        <span class="small" data-testid="logs-state">{state}</span>
        <select aria-label="streams" value={show} onChange={(e) => setShow((e.target as HTMLSelectElement).value as typeof show)}>
          <option value="both">stdout and stderr</option>
          <option value="stdout">stdout</option>
          <option value="stderr">stderr</option>
        </select>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>{paused ? 'Resume' : 'Pause'}</button>
        {state !== 'following' && state !== 'connecting' && running && <button type="button" onClick={() => setGen(gen + 1)}>Follow again</button>}
        <a href={`/api/v1/containers/${id}/logs`} download={`${name}-logs.txt`}>Download</a>
        {dropped > 0 && <span class="small">{dropped} lines not shown while paused (they are in the download)</span>}
      </div>
      <div ref={view} class={`log-view mono show-${show}`} data-testid="log-view" role="log" aria-live="off" tabIndex={0} />
    </section>
  );
}
