// Who holds which GPU (the server's ledger, /api/v1/gpus), for the pages
// that show GPUs: read once and again whenever a container changes.
import { useEffect } from 'preact/hooks';
import { get } from './api';
import { useLive } from './hooks';
import { live } from './live';
import { useAsync } from './ui';

export interface Holder { container_id: number; name: string; owner: string; since_ms?: number }
interface LedgerGpu { server: string; uuid: string; index: number; holder: Holder | null }

/** server/uuid -> its holder, for every held GPU. */
export function useHolders(): Map<string, Holder & { index: number }> {
  useLive();
  const ledger = useAsync(() => get<{ gpus: LedgerGpu[] }>('/api/v1/gpus').catch(() => ({ gpus: [] })), []);
  const seq = live.containersSeq;
  useEffect(() => {
    if (seq) ledger.reload();
  }, [seq]);
  const m = new Map<string, Holder & { index: number }>();
  for (const g of ledger.data?.gpus ?? []) if (g.holder) m.set(`${g.server}/${g.uuid}`, { ...g.holder, index: g.index });
  return m;
}

/** A host's held GPUs in words: "GPU 0: train-1 (alice) · GPU 3: ...". */
export function heldText(holders: Map<string, Holder & { index: number }>, server: string): string {
  const parts: [number, string][] = [];
  for (const [k, h] of holders) if (k.startsWith(`${server}/`)) parts.push([h.index, `GPU ${h.index}: ${h.name} (${h.owner})`]);
  return parts.sort((a, b) => a[0] - b[0]).map((p) => p[1]).join(' · ');
}
