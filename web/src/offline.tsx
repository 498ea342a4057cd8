// Why a host is not online, for how long, and when it was last seen: the
// registry's reason (in words the server chose), kept current by the live
// deltas and ticking while shown.
import { useEffect, useState } from 'preact/hooks';
import type { Server } from './fleet';
import { ago, duration } from './format';

/** Re-renders the caller every ms while it is mounted. */
export function useTick(ms: number) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}

export function OfflineNote({ s }: { s: Server }) {
  useTick(10000);
  if (s.online === true) return null;
  if (s.online === null)
    return <p class="offline-why muted" data-testid="offline-why">Not scraped yet: waiting for the first answer from {s.address}:{s.agent_port}.</p>;
  const since = s.status_since_ms ? ` for ${duration(Date.now() - s.status_since_ms)}` : '';
  // ts_ms is the last good scrape this server process saw; without one
  // (never answered, or before a restart) the status's start is what is known
  const seen = s.ts_ms ? `last seen ${ago(s.ts_ms)}` : s.status_since_ms ? `no answer since ${new Date(s.status_since_ms).toLocaleString()}` : 'never seen';
  return (
    <p class="offline-why" data-testid="offline-why" role="status">
      Offline{since} <span class="muted">({seen})</span>: {s.last_error || 'no answer'}
    </p>
  );
}
