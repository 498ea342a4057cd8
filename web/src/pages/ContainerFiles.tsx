// A file browser into a container: its folders (the owner's workspace at
// /workspace among them), a file downloaded as it is or a folder as a tar,
// uploads with their progress, a new folder, delete. The server streams
// both ways, so sizes are bounded by its settings, not by memory.
import { useState } from 'preact/hooks';
import { api, get } from '../api';
import { bytes, time } from '../format';
import { ErrorBox, errorText, useAsync } from '../ui';

interface Entry { name: string; type: 'file' | 'dir' | 'link' | 'other'; size: number; mode: string; mtime: number }
interface Listing { path: string; entries: Entry[]; truncated: boolean }

const join = (dir: string, name: string) => (dir.endsWith('/') ? dir : dir + '/') + name;
const q = (p: string) => `path=${encodeURIComponent(p)}`;

export function ContainerFiles({ id }: { id: number }) {
  const [dir, setDir] = useState('/workspace');
  const base = `/api/v1/containers/${id}/files`;
  const list = useAsync(() => get<Listing>(`${base}?${q(dir)}`), [id, dir]);
  const [error, setError] = useState('');
  const [progress, setProgress] = useState<{ name: string; pct: number } | null>(null);
  const entries = [...(list.data?.entries ?? [])].sort((a, b) => (a.type === 'dir' ? 0 : 1) - (b.type === 'dir' ? 0 : 1) || a.name.localeCompare(b.name));
  const up = dir.replace(/\/[^/]+\/?$/, '') || '/';

  // each picked file in turn, one request each (the server streams each
  // to the host as it comes); the first failure stops the rest
  const upload = (files: FileList | null) => {
    const picked = files ? [...files] : [];
    if (!picked.length) return;
    setError('');
    const next = (i: number) => {
      if (i >= picked.length) {
        setProgress(null);
        list.reload();
        return;
      }
      const f = picked[i];
      const label = picked.length > 1 ? `${f.name} (${i + 1} of ${picked.length})` : f.name;
      // XMLHttpRequest: fetch has no upload progress
      const x = new XMLHttpRequest();
      x.open('PUT', `${base}/upload?${q(join(dir, f.name))}`);
      x.upload.onprogress = (ev) => ev.lengthComputable && setProgress({ name: label, pct: Math.round((100 * ev.loaded) / ev.total) });
      x.onloadend = () => {
        if (x.status === 201) return next(i + 1);
        setProgress(null);
        try {
          setError(`${f.name}: ${JSON.parse(x.responseText).error.message}`);
        } catch {
          setError(`${f.name}: upload failed (${x.status})`);
        }
        list.reload();
      };
      x.send(f);
    };
    next(0);
  };
  const act = async (fn: () => Promise<unknown>) => {
    setError('');
    try {
      await fn();
    } catch (e) {
      setError(errorText(e));
    }
    list.reload();
  };

  return (
    <section class="panel files" aria-label="files">
      <div class="filters" role="group" aria-label="file controls">
        <strong>Files</strong>
        <form onSubmit={(e) => { e.preventDefault(); setDir(String(new FormData(e.currentTarget as HTMLFormElement).get('dir') || '/')); }}>
          <input name="dir" class="mono" value={dir} aria-label="folder" size={40} key={dir} />
        </form>
        <button type="button" onClick={() => setDir(up)} disabled={dir === '/'}>Up</button>
        <label class="button">Upload<input type="file" name="upload" multiple hidden onChange={(e) => upload((e.target as HTMLInputElement).files)} /></label>
        <button type="button" onClick={() => {
          const name = prompt('New folder name');
          if (name) act(() => api('POST', `${base}/mkdir?${q(join(dir, name))}`));
        }}>New folder</button>
        <a href={`${base}/download?${q(dir)}`} download>Download folder</a>
        {progress && <span class="small" data-testid="upload-progress"><progress max={100} value={progress.pct} /> {progress.name} {progress.pct}%</span>}
      </div>
      <ErrorBox error={error || list.error} />
      <table class="table small" aria-label={`files in ${dir}`}>
        <thead><tr><th>Name</th><th>Size</th><th>Modified</th><th>Mode</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {entries.map((e) => (
            <tr data-file={e.name} data-type={e.type}>
              <td class="mono">{e.type === 'dir'
                ? <button type="button" class="link" onClick={() => setDir(join(dir, e.name))}>{e.name}/</button>
                : <a href={`${base}/download?${q(join(dir, e.name))}`} download={e.name}>{e.name}</a>}</td>
              <td>{e.type === 'file' ? bytes(e.size) : ''}</td>
              <td>{time(e.mtime * 1000)}</td>
              <td class="mono">{e.mode}</td>
              <td class="row-actions"><button type="button" class="danger" onClick={() => {
                if (confirm(`Delete ${join(dir, e.name)}${e.type === 'dir' ? ' and everything in it' : ''}?`)) act(() => api('DELETE', `${base}?${q(join(dir, e.name))}`));
              }}>Delete</button></td>
            </tr>
          ))}
          {list.data && !entries.length && <tr><td colSpan={5} class="muted">Empty folder.</td></tr>}
          {list.data?.truncated && <tr><td colSpan={5} class="muted">More entries than shown.</td></tr>}
        </tbody>
      </table>
    </section>
  );
}
