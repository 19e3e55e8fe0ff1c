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
//
// A connection can also die silently (a network partition sends no reset): nothing arrives,
// and nothing says so until TCP keepalive gives up. So the listener holds a lease: every
// HEARTBEAT_INTERVAL_MS it NOTIFYs a channel only it listens to, and
// trusts its caches only while the last echo is younger than HEARTBEAT_LEASE_MS. (Beats are
// sent on the mount's own connection: pg-listen's client runs one query at a time.) Notices are
// delivered in commit order, so an echo also proves every notice committed before its send
// has arrived. A missed lease suspends caching exactly like a lost connection.

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
/** How often the listener checks its own connection with an echo. */
export const HEARTBEAT_INTERVAL_MS = 1000;
/** How old the last echo may get before the caches stop being trusted. */
export const HEARTBEAT_LEASE_MS = 3000;

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
  /** NOTIFY channel with payload on another connection (`select pg_notify(...)`) */
  sendBeat: (channel: string, payload: string) => Promise<unknown>,
): Promise<Listener> {
  const subscriber = createSubscriber(
    { connectionString: url, application_name: LISTENER_APPLICATION },
    // never give up reconnecting (the mount serves uncached meanwhile); back off to 2 s
    { parse: (payload: string) => payload, retryTimeout: 0, retryInterval: (attempt) => Math.min(100 * 2 ** attempt, 2000) },
  );
  let listening = false;
  let reconnecting = false;
  subscriber.notifications.on(CACHE_CHANNEL, (payload: unknown) => applyCacheNotice(String(payload), tenantId, origin, sink));
  subscriber.notifications.on(LAYER_CHANNEL, (payload: unknown) => {
    if (Number(payload) === tenantId) sink.viewChanged();
  });
  // 'reconnect' comes at once when the connection drops (first attempt), 'connected' once
  // the new connection LISTENs on every channel again.
  subscriber.events.on('reconnect', (attempt: number) => {
    if (attempt === 1) log('tarbox: cache invalidation listener lost its connection; serving uncached until it is back');
    reconnecting = true;
    sink.suspend();
  });
  subscriber.events.on('connected', () => {
    reconnecting = false;
    if (listening) { lease.renewed(); sink.resume(); log('tarbox: cache invalidation listener reconnected'); }
  });
  subscriber.events.on('error', (err: Error) => {
    log(`tarbox: cache invalidation listener: ${err.message}`);
    sink.suspend();
  });
  const lease = new Lease(subscriber, `tarbox_beat_${origin}`, sendBeat, sink, log, () => listening && !reconnecting);
  await subscriber.connect();
  await subscriber.listenTo(CACHE_CHANNEL);
  await subscriber.listenTo(LAYER_CHANNEL);
  await lease.listen();
  listening = true;
  sink.resume();
  return { close: () => { lease.stop(); sink.suspend(); return subscriber.close(); } };
}

/** The heartbeat lease on the listening connection (see the top of this file). */
class Lease {
  private lastEcho = Date.now();
  private sending = false;
  private expired = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly subscriber: Subscriber,
    private readonly channel: string,
    private readonly sendBeat: (channel: string, payload: string) => Promise<unknown>,
    private readonly sink: ChangeSink,
    private readonly log: (msg: string) => void,
    /** false while pg-listen is (re)connecting: it suspends and resumes the caches then */
    private readonly connected: () => boolean,
  ) {
    subscriber.notifications.on(channel, () => this.echoed());
    this.timer = setInterval(() => this.beat(), HEARTBEAT_INTERVAL_MS);
    this.timer.unref();
  }

  async listen(): Promise<void> {
    await this.subscriber.listenTo(this.channel);
    this.renewed();
  }

  renewed(): void {
    this.lastEcho = Date.now();
    this.expired = false;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private echoed(): void {
    if (!this.connected()) return; // the channels may not all be listened to again yet
    const wasExpired = this.expired;
    this.renewed();
    if (wasExpired) {
      this.log('tarbox: cache invalidation listener answers again; caching again');
      this.sink.resume();
    }
  }

  private beat(): void {
    if (!this.connected()) return;
    if (!this.expired && Date.now() - this.lastEcho > HEARTBEAT_LEASE_MS) {
      this.expired = true;
      this.log(`tarbox: cache invalidation listener silent for ${HEARTBEAT_LEASE_MS} ms; serving uncached until it answers`);
      this.sink.suspend();
    }
    // one beat in flight at a time: on a silently dead connection they would pile up
    if (this.sending) return;
    this.sending = true;
    this.sendBeat(this.channel, String(Date.now()))
      .catch(() => { /* the lease runs out, or the mount's own calls report the database */ })
      .finally(() => { this.sending = false; });
  }
}
