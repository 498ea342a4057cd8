// A host's disk cleanup, under its images: pick what may go, see exactly
// what would (each item and the bytes it frees), then remove that list —
// the server removes only those items, and only while still unused.
import { useState } from 'preact/hooks';
import { api, get } from '../api';
import { bytes } from '../format';
import { ErrorBox, errorText } from '../ui';

interface Item { kind: 'container' | 'image' | 'volume' | 'cache' | 'app_container' | 'app_folder'; id: string; name: string; bytes: number }
interface Plan { items: Item[]; bytes: number }
interface Run { removed: Item[]; skipped: { kind: string; id: string; reason: string }[]; bytes: number }

const KINDS: [string, string][] = [
  ['containers', 'stopped containers gpufleet did not make'],
  ['apps', 'app containers and folders no app knows (a folder kept at a deinstall, a clone cut off, a container left behind)'],
  ['dangling', 'untagged images no container uses'],
  ['images', 'every image no container uses'],
  ['volumes', 'volumes no container mounts'],
  ['cache', 'build cache not in use'],
];

export function Cleanup({ server, onDone }: { server: string; onDone: () => void }) {
  const [kinds, setKinds] = useState(new Set(['containers', 'dangling']));
  const [plan, setPlan] = useState<Plan | null>(null);
  const [run, setRun] = useState<Run | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const path = `/api/v1/servers/${encodeURIComponent(server)}/cleanup`;

  const look = async () => {
    setError('');
    setRun(null);
    setBusy(true);
    try {
      setPlan(await get<Plan>(`${path}?kinds=${[...kinds].join(',')}`));
    } catch (e) {
      setError(errorText(e));
    }
    setBusy(false);
  };
  const remove = async () => {
    if (!plan || !confirm(`Remove these ${plan.items.length} items from ${server} (${bytes(plan.bytes)})?`)) return;
    setBusy(true);
    try {
      setRun(await api<Run>('POST', path, { items: plan.items.map(({ kind, id }) => ({ kind, id })) }));
      setPlan(null);
      onDone();
    } catch (e) {
      setError(errorText(e));
    }
    setBusy(false);
  };
  const toggle = (k: string) => {
    const n = new Set(kinds);
    if (n.has(k)) n.delete(k);
    else n.add(k);
    setKinds(n);
    setPlan(null);
  };

  return (
    <section class="panel" aria-label="cleanup">
      <h2>Clean up {server}</h2>
      <div class="filters" role="group" aria-label="what may go">
        {KINDS.map(([k, words]) => (
          <label class="check"><input type="checkbox" name={k} checked={kinds.has(k)} onChange={() => toggle(k)} /> {words}</label>
        ))}
        <button type="button" disabled={busy || !kinds.size} onClick={look}>Show what would go</button>
      </div>
      <ErrorBox error={error} />
      {plan && (
        <>
          <table class="table small" aria-label="cleanup plan">
            <thead><tr><th>Kind</th><th>Name</th><th>Frees</th></tr></thead>
            <tbody>
              {plan.items.map((i) => <tr data-item={i.name}><td>{i.kind}</td><td class="mono">{i.name}</td><td>{bytes(i.bytes)}</td></tr>)}
              {!plan.items.length && <tr><td colSpan={3} class="muted">Nothing to clean up.</td></tr>}
            </tbody>
          </table>
          {plan.items.length > 0 && (
            <button type="button" class="danger" disabled={busy} onClick={remove}>Remove these {plan.items.length} ({bytes(plan.bytes)})</button>
          )}
        </>
      )}
      {run && (
        <p data-testid="cleanup-result">
          Removed {run.removed.length}, freed {bytes(run.bytes)}.
          {run.skipped.length > 0 && <> Left {run.skipped.length}: {run.skipped.map((s) => `${s.kind} ${s.id.slice(0, 19)} (${s.reason})`).join('; ')}.</>}
        </p>
      )}
    </section>
  );
}
