// Cache invalidation nudges from PostgreSQL, on one listening connection per mount.
//
// * tarbox_cache: triggers on inodes and dentries (migration 000004) send
//   "<tenant> <origin> i <ino>" and "<tenant> <origin> d <parent ino> <name hex>" at commit.
// * tarbox_layers: a layer switch sends "<tenant>": every cached view of it is stale.
//
// A notice carries no data: the mount drops what it names and reads again. Notices of this
// mount's own changes (origin = ours) are skipped: the mount applied those itself. While the
// listening connection is down, notices may be missed, so the mount caches nothing
// (suspend) until the connection is back and listening again (resume, which starts from an
// empty cache). pg-listen reconnects without a time limit.

import { randomBytes } from 'node:crypto';
import * as pgListen from 'pg-listen';
import type { Subscriber } from 'pg-listen';

// pg-listen is CommonJS with `exports.default`; under Node's ESM interop the function may
// sit one level down.
type CreateSubscriber = (
  config: { connectionString: string; application_name?: string },
  options?: { parse?: (p: string) => unknown; retryTimeout?: number; retryInterval?: (attempt: number) => number },
) => Subscriber;
const moduleDefault = (pgListen as unknown as { default: CreateSubscriber | { default: CreateSubscriber } }).default;
const createSubscriber: CreateSubscriber = typeof moduleDefault === 'function' ? moduleDefault : moduleDefault.default;

export interface Listener {
  close(): Promise<void>;
}

export const LAYER_CHANNEL = 'tarbox_layers';
export const CACHE_CHANNEL = 'tarbox_cache';
/** application_name of the listening connection (tests find its backend by it). */
export const LISTENER_APPLICATION = 'tarbox-listen';

/** What the listener tells: each method drops cache entries. */
export interface ChangeSink {
  /** Notices may be missed from now on: stop caching. */
  suspend(): void;
  /** Listening (again): start from empty caches. */
  resume(): void;
  /** The tenant's view changed as a whole (layer switch). */
  viewChanged(): void;
  inodeChanged(ino: number): void;
  entryChanged(parent: number, name: string): void;
  /** Counts a notice, own or not. */
  counted(own: boolean): void;
}

/** A fresh identifier for this mount's connections (session setting tarbox.origin). */
export function newOrigin(): string {
  return 'm' + randomBytes(6).toString('hex');
}

/** Apply one tarbox_cache payload to the sink, if it is about this tenant and not ours. */
export function applyCacheNotice(payload: string, tenantId: number, origin: string, sink: ChangeSink): void {
  const [tenant, from, kind, id, nameHex] = payload.split(' ');
  if (Number(tenant) !== tenantId) return;
  const own = from === origin;
  sink.counted(own);
  if (own) return;
  if (kind === 'i') sink.inodeChanged(Number(id));
  else if (kind === 'd') sink.entryChanged(Number(id), Buffer.from(nameHex ?? '', 'hex').toString('latin1'));
  else sink.viewChanged(); // unknown kind (a newer schema): drop everything rather than guess
}

export async function listenForChanges(
  url: string,
  tenantId: number,
  origin: string,
  sink: ChangeSink,
  log: (msg: string) => void,
): Promise<Listener> {
  const subscriber = createSubscriber(
    { connectionString: url, application_name: LISTENER_APPLICATION },
    // never give up reconnecting (the mount serves uncached meanwhile); back off to 2 s
    { parse: (payload: string) => payload, retryTimeout: 0, retryInterval: (attempt) => Math.min(100 * 2 ** attempt, 2000) },
  );
  let listening = false;
  subscriber.notifications.on(CACHE_CHANNEL, (payload: unknown) => applyCacheNotice(String(payload), tenantId, origin, sink));
  subscriber.notifications.on(LAYER_CHANNEL, (payload: unknown) => {
    if (Number(payload) === tenantId) sink.viewChanged();
  });
  // 'reconnect' comes at once when the connection drops (first attempt), 'connected' once
  // the new connection LISTENs on every channel again.
  subscriber.events.on('reconnect', (attempt: number) => {
    if (attempt === 1) log('tarbox: cache invalidation listener lost its connection; serving uncached until it is back');
    sink.suspend();
  });
  subscriber.events.on('connected', () => {
    if (listening) { sink.resume(); log('tarbox: cache invalidation listener reconnected'); }
  });
  subscriber.events.on('error', (err: Error) => {
    log(`tarbox: cache invalidation listener: ${err.message}`);
    sink.suspend();
  });
  await subscriber.connect();
  await subscriber.listenTo(CACHE_CHANNEL);
  await subscriber.listenTo(LAYER_CHANNEL);
  listening = true;
  sink.resume();
  return { close: () => { sink.suspend(); return subscriber.close(); } };
}
