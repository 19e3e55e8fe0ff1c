// Cache invalidation nudges from PostgreSQL. Stored functions NOTIFY small identifiers
// (the tenant id) when something every mount must forget happens, such as a layer switch;
// each mount LISTENs and drops caches. A notice carries no data: after it, the mount
// simply reads again. If the listening connection drops, notices may have been missed, so
// the mount drops its caches on every reconnect as well.

import * as pgListen from 'pg-listen';
import type { Subscriber } from 'pg-listen';

// pg-listen is CommonJS with `exports.default`; under Node's ESM interop the function may
// sit one level down.
type CreateSubscriber = (config: { connectionString: string }, options?: { parse?: (p: string) => unknown }) => Subscriber;
const moduleDefault = (pgListen as unknown as { default: CreateSubscriber | { default: CreateSubscriber } }).default;
const createSubscriber: CreateSubscriber = typeof moduleDefault === 'function' ? moduleDefault : moduleDefault.default;

export interface Listener {
  close(): Promise<void>;
}

export const LAYER_CHANNEL = 'tarbox_layers';

export async function listenForLayerSwitches(
  url: string,
  tenantId: number,
  dropCaches: () => void,
  log: (msg: string) => void,
): Promise<Listener> {
  const subscriber = createSubscriber({ connectionString: url }, { parse: (payload: string) => payload });
  subscriber.notifications.on(LAYER_CHANNEL, (payload: unknown) => {
    if (String(payload) === String(tenantId)) dropCaches();
  });
  subscriber.events.on('reconnect', () => dropCaches());
  subscriber.events.on('connected', () => dropCaches());
  subscriber.events.on('error', (err: Error) => {
    // the subscriber gave up reconnecting: keep serving from the database, uncached
    log(`tarbox: cache invalidation listener failed: ${err.message}`);
    dropCaches();
  });
  await subscriber.connect();
  await subscriber.listenTo(LAYER_CHANNEL);
  return { close: () => subscriber.close() };
}
