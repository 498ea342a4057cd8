// The hooks pages share: follow the fleet, keep a server's values coming,
// follow the live connection.
import { useEffect, useState } from 'preact/hooks';
import { fleet } from './fleet';
import { live } from './live';

/** Re-renders on every fleet change (once per frame at most). */
export function useFleet(): number {
  const [v, set] = useState(0);
  useEffect(() => fleet.subscribe(() => set((n) => n + 1)), []);
  return v;
}

/** Keeps a server's values (all servers' for "*", none for null) current
 * while the component is mounted. */
export function useWant(name: string | null) {
  useEffect(() => (name ? fleet.want(name) : undefined), [name]);
}

export function useLive(): number {
  const [v, set] = useState(0);
  useEffect(() => live.subscribe(() => set((n) => n + 1)), []);
  return v;
}

/** Told when an admin approved, turned down or changed users, so the nav's
 * count of sign-ups waiting is read again at once. */
export const pendingChanged = new EventTarget();
