/**
 * A list+watch source for one resource, written on small pieces instead of client-node's
 * `makeInformer`/`ListWatch`, whose 1.3.0 `cache.js` still stops for good on any error other than
 * 410 (it fires `error` and never restarts), has no watchdog for a silent stream (client-node
 * #364, #596, #958), no backoff (restarting it by hand stormed servers, #1933), lists without
 * pagination, and keys its cache by name rather than uid. Modelled on kubernetes-fluent-client's
 * `Watcher` (last-seen watchdog, periodic relist diffed by uid, relist on 410, typed events).
 *
 * The cycle: list (paged) → diff against the cache by uid (synthesising ADDED / MODIFIED /
 * DELETED for whatever changed unseen) → watch from the list's resourceVersion with bookmarks and
 * a jittered server-side timeout → on a clean close, watch again from the last resourceVersion; on
 * 410 Gone, list again; on an error, back off with jitter (capped) and retry; after
 * `maxConsecutiveFailures`, give up and say so. Meanwhile a watchdog restarts a watch that has been
 * silent (no event, no bookmark) for `lastSeenLimitMs`, and a periodic relist catches anything a
 * watch lost. Reconcilers must still be level-based (ManageIQ/kubeclient#599): events say "look",
 * the cache says what is.
 *
 * I/O goes through a `ListWatchTransport`; `client-node-transport.ts` is the real one.
 */
import type { Clock, TimerHandle } from "../controller/clock.js";
import { systemClock } from "../controller/clock.js";
import type { BackoffOptions } from "../controller/rate-limiters.js";
import { backoffDelay } from "../controller/rate-limiters.js";
import { ObjectStore, uidOf } from "./object-store.js";
import type { KubeObject, KubeStatus, ListPage, WatchEventType } from "./types.js";
import { KubeApiError, isGone } from "./types.js";

export interface ListRequest {
  /** Page size. */
  limit: number;
  continueToken?: string;
}

export interface WatchRequest {
  resourceVersion: string;
  /** Server-side timeout: the server closes the watch cleanly after this long. */
  timeoutSeconds: number;
  allowWatchBookmarks: true;
}

export interface WatchHandle {
  /** Aborts the watch. The transport must not call `onDone` for a stopped watch (it is ignored if it does). */
  stop(): void;
}

/** The I/O a watch source needs. */
export interface ListWatchTransport<T extends KubeObject = KubeObject> {
  list(req: ListRequest): Promise<ListPage<T>>;
  /**
   * Opens a watch. `onEvent` gets every decoded event (ERROR events carry a `Status`); `onDone`
   * is called once when the stream ends: `null` for a clean close, an error (with `statusCode`)
   * otherwise. May reject instead of calling `onDone` if the request cannot start.
   */
  watch(
    req: WatchRequest,
    onEvent: (type: WatchEventType, object: unknown) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle>;
}

/** An object change, from the watch stream or synthesised by a (re)list diff. */
export interface ChangeEvent<T extends KubeObject = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: T;
  /** The cached object it replaces (MODIFIED) or the last known state (DELETED). */
  old?: T;
  /** `list` when synthesised by a relist diff (including the initial list), `watch` otherwise. */
  origin: "list" | "watch";
}

export type RelistReason = "initial" | "periodic" | "gone" | "recover";
export type RestartReason = "closed" | "gone" | "error" | "watchdog" | "relist";

/** Lifecycle events, for metrics and logs (fluent-client's WatchEvent, trimmed). */
export type WatchSourceEvent =
  | { type: "connect"; resourceVersion: string }
  | { type: "reconnect"; reason: RestartReason; attempt: number; delayMs: number }
  | {
      type: "relist";
      reason: RelistReason;
      objects: number;
      added: number;
      modified: number;
      deleted: number;
    }
  | { type: "watchdog"; silentMs: number }
  | { type: "error"; phase: "list" | "watch" | "handler"; cause: unknown }
  | { type: "give-up"; failures: number; cause: unknown };

export interface WatchSourceOptions<T extends KubeObject = KubeObject> {
  /** The list/watch I/O. Required. */
  transport: ListWatchTransport<T>;
  /** For logs and metrics labels, e.g. "pods". Defaults to "watch". */
  name?: string;
  /** Defaults to the system clock. */
  clock?: Clock;
  /** Defaults to Math.random; used for all jitter. */
  random?: () => number;
  /**
   * Restart a watch when nothing (no event, no bookmark) arrived for this long. Defaults to
   * 300 000 ms (Pepr's PEPR_LAST_SEEN_LIMIT_SECONDS=300). Longer than the server timeout below,
   * so it fires only for a stream that died without closing.
   */
  lastSeenLimitMs?: number;
  /** How often the watchdog checks. Defaults to 5 000 ms (fluent-client's resyncDelaySec). */
  watchdogIntervalMs?: number;
  /**
   * List again (and diff) this often, even with a healthy watch. Defaults to 600 000 ms
   * (fluent-client's relistIntervalSec and Pepr's 600 s), plus up to 10 % random jitter.
   */
  relistIntervalMs?: number;
  /**
   * The watch request's `timeoutSeconds` is this × (1 + random()), so the server closes each watch
   * cleanly after 2–4 minutes and replicas do not reconnect in step. Defaults to 120.
   */
  minWatchTimeoutSeconds?: number;
  /** List page size. Defaults to 500 (client-go's reflector page size). */
  pageSize?: number;
  /**
   * Backoff between failed attempts. Defaults to 500 ms doubling to 30 s with equal jitter
   * (each delay uniform in [d/2, d]), so replicas that lost the server together come back apart.
   */
  backoff?: Omit<BackoffOptions, "random">;
  /**
   * Consecutive failures (list errors, watch errors, watches that end before delivering anything
   * within `minHealthyWatchMs`) before giving up with a `give-up` event; the owner should then
   * exit and let the pod restart. 0 never gives up. Defaults to 10 (about 2.5 min of outage with
   * the default backoff).
   */
  maxConsecutiveFailures?: number;
  /**
   * A watch that closes within this time without delivering an event counts as a failure (backed
   * off), so a server that accepts and drops at once is not hammered. Defaults to 1 000 ms.
   */
  minHealthyWatchMs?: number;
}

type State = "idle" | "listing" | "connecting" | "watching" | "backoff" | "stopped" | "gave-up";

export class WatchSource<T extends KubeObject = KubeObject> {
  readonly name: string;
  readonly store = new ObjectStore<T>();

  private readonly transport: ListWatchTransport<T>;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly lastSeenLimitMs: number;
  private readonly watchdogIntervalMs: number;
  private readonly relistIntervalMs: number;
  private readonly minWatchTimeoutSeconds: number;
  private readonly pageSize: number;
  private readonly backoff: Omit<BackoffOptions, "random">;
  private readonly maxFailures: number;
  private readonly minHealthyWatchMs: number;

  private readonly changeHandlers = new Set<(e: ChangeEvent<T>) => void>();
  private readonly eventHandlers = new Set<(e: WatchSourceEvent) => void>();
  private syncWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];

  private state: State = "idle";
  /** Bumped whenever the current attempt is abandoned; stale callbacks compare and bail. */
  private generation = 0;
  private handle: WatchHandle | undefined;
  private resourceVersion = "";
  private needList = true;
  private relistReason: RelistReason = "initial";
  private failures = 0;
  private synced = false;
  private lastSeen = 0;
  private connectedAt = 0;
  private lastListAt = Number.NEGATIVE_INFINITY;
  private sawEvent = false;
  private reconnectTimer: TimerHandle | undefined;
  private watchdogTimer: TimerHandle | undefined;
  private relistTimer: TimerHandle | undefined;

  constructor(opts: WatchSourceOptions<T>) {
    this.transport = opts.transport;
    this.name = opts.name ?? "watch";
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.lastSeenLimitMs = opts.lastSeenLimitMs ?? 300_000;
    this.watchdogIntervalMs = opts.watchdogIntervalMs ?? 5_000;
    this.relistIntervalMs = opts.relistIntervalMs ?? 600_000;
    this.minWatchTimeoutSeconds = opts.minWatchTimeoutSeconds ?? 120;
    this.pageSize = opts.pageSize ?? 500;
    this.backoff = opts.backoff ?? { baseMs: 500, maxMs: 30_000, jitter: "equal" };
    this.maxFailures = opts.maxConsecutiveFailures ?? 10;
    this.minHealthyWatchMs = opts.minHealthyWatchMs ?? 1_000;
  }

  /**
   * Subscribes to object changes. With `replay`, the handler first gets an ADDED (origin `list`)
   * for every object already cached, so a late subscriber starts from the current state. Returns
   * an unsubscribe function. Handler errors are reported as `error` events, never thrown.
   */
  onChange(handler: (e: ChangeEvent<T>) => void, opts: { replay?: boolean } = {}): () => void {
    this.changeHandlers.add(handler);
    if (opts.replay) {
      for (const object of this.store.list())
        this.callChange(handler, { type: "ADDED", object, origin: "list" });
    }
    return () => this.changeHandlers.delete(handler);
  }

  /** Subscribes to lifecycle events (connect, reconnect, relist, watchdog, error, give-up). */
  onEvent(handler: (e: WatchSourceEvent) => void): () => void {
    this.eventHandlers.add(handler);
    return () => this.eventHandlers.delete(handler);
  }

  /** True once the first list has been applied to the store. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** The resourceVersion the next watch would start from. */
  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  /** Resolves once the first list is in the store; rejects if the source gives up or stops first. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.state === "stopped" || this.state === "gave-up") {
      return Promise.reject(new Error(`watch ${this.name}: stopped before sync`));
    }
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  /** Starts listing and watching. Idempotent while running. */
  start(): void {
    if (this.state !== "idle") return;
    this.scheduleWatchdog();
    this.scheduleRelist();
    void this.connect();
  }

  /** Stops the watch and every timer. The store keeps its last contents. */
  stop(): void {
    if (this.state === "stopped") return;
    this.state = "stopped";
    this.abandonAttempt();
    for (const t of [this.watchdogTimer, this.relistTimer]) if (t) this.clock.clearTimeout(t);
    this.watchdogTimer = this.relistTimer = undefined;
    this.rejectSyncWaiters(new Error(`watch ${this.name}: stopped before sync`));
  }

  // ---- the cycle ----

  private async connect(): Promise<void> {
    if (this.isFinished()) return;
    const gen = ++this.generation;
    // The watchdog also covers a list or a watch request that hangs before the stream opens.
    this.lastSeen = this.clock.now();
    try {
      if (this.needList) {
        this.state = "listing";
        await this.relist(gen);
        if (gen !== this.generation) return;
      }
      this.state = "connecting";
      const timeoutSeconds = Math.round(this.minWatchTimeoutSeconds * (1 + this.random()));
      const handle = await this.transport.watch(
        { resourceVersion: this.resourceVersion, timeoutSeconds, allowWatchBookmarks: true },
        (type, object) => {
          if (gen === this.generation) this.onWatchEvent(type, object);
        },
        (err) => {
          if (gen === this.generation) this.onWatchDone(err);
        },
      );
      if (gen !== this.generation) {
        handle.stop();
        return;
      }
      this.handle = handle;
      this.state = "watching";
      this.connectedAt = this.lastSeen = this.clock.now();
      this.sawEvent = false;
      this.emit({ type: "connect", resourceVersion: this.resourceVersion });
    } catch (err) {
      if (gen !== this.generation) return;
      const phase = this.state === "listing" ? "list" : "watch";
      if (isGone(err)) {
        // An expired resourceVersion (or continue token): start over from a fresh list.
        this.needList = true;
        this.relistReason = "gone";
      }
      this.fail(phase, err);
    }
  }

  /** Lists every page, diffs against the store, and emits what changed. */
  private async relist(gen: number): Promise<void> {
    const items: T[] = [];
    let resourceVersion = "";
    let continueToken: string | undefined;
    do {
      const page = await this.transport.list({ limit: this.pageSize, continueToken });
      if (gen !== this.generation) return;
      items.push(...page.items);
      // The first page's resourceVersion is the snapshot the continued pages belong to.
      if (!resourceVersion) resourceVersion = page.resourceVersion;
      continueToken = page.continueToken || undefined;
    } while (continueToken);

    const listed = new Map<string, T>();
    for (const obj of items) listed.set(uidOf(obj), obj);
    let added = 0;
    let modified = 0;
    let deleted = 0;
    for (const uid of [...this.store.uids()]) {
      if (listed.has(uid)) continue;
      const old = this.store.remove(uid);
      if (old) {
        deleted++;
        this.dispatch({ type: "DELETED", object: old, old, origin: "list" });
      }
    }
    for (const [uid, obj] of listed) {
      const cached = this.store.getByUid(uid);
      if (!cached) {
        this.store.upsert(obj);
        added++;
        this.dispatch({ type: "ADDED", object: obj, origin: "list" });
      } else if (!sameVersion(cached, obj)) {
        this.store.upsert(obj);
        modified++;
        this.dispatch({ type: "MODIFIED", object: obj, old: cached, origin: "list" });
      }
    }
    this.resourceVersion = resourceVersion;
    this.lastListAt = this.clock.now();
    this.needList = false;
    this.failures = 0;
    const reason = this.relistReason;
    this.relistReason = "recover";
    this.scheduleRelist();
    this.emit({ type: "relist", reason, objects: listed.size, added, modified, deleted });
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w.resolve();
    }
  }

  private onWatchEvent(type: WatchEventType, raw: unknown): void {
    this.lastSeen = this.clock.now();
    if (type === "ERROR") {
      const status = (raw ?? {}) as KubeStatus;
      const code = typeof status.code === "number" ? status.code : 500;
      const err = new KubeApiError(
        code,
        `watch ${this.name}: ${status.message ?? status.reason ?? "error event"}`,
        {
          reason: status.reason,
          body: raw,
        },
      );
      this.endWatch(err);
      return;
    }
    const obj = raw as T | undefined;
    if (!obj || typeof obj !== "object") return;
    this.sawEvent = true;
    this.failures = 0;
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    switch (type) {
      case "BOOKMARK":
        return;
      case "ADDED":
      case "MODIFIED": {
        const cached = this.store.getByUid(uidOf(obj));
        if (cached && sameVersion(cached, obj)) return;
        this.store.upsert(obj);
        this.dispatch(
          cached
            ? { type: "MODIFIED", object: obj, old: cached, origin: "watch" }
            : { type: "ADDED", object: obj, origin: "watch" },
        );
        return;
      }
      case "DELETED": {
        const old = this.store.remove(uidOf(obj));
        if (old) this.dispatch({ type: "DELETED", object: obj, old, origin: "watch" });
        return;
      }
    }
  }

  private onWatchDone(err: unknown): void {
    this.endWatch(err ?? null);
  }

  /** The current watch is over (closed, failed, 410): decide what comes next. */
  private endWatch(err: unknown): void {
    const endedEarly = !this.sawEvent && this.clock.now() - this.connectedAt < this.minHealthyWatchMs;
    this.abandonAttempt();
    if (this.isFinished()) return;
    if (err !== null && isGone(err)) {
      // Usual after a long disconnect: relist at once. Gone again right after a fresh list means
      // something is off with the server; back off instead of looping.
      const justListed = this.clock.now() - this.lastListAt < this.minHealthyWatchMs;
      this.needList = true;
      this.relistReason = "gone";
      if (justListed && endedEarly) this.fail("watch", err);
      else this.retryNow("gone");
      return;
    }
    if (err === null) {
      if (endedEarly) this.fail("watch", new Error(`watch ${this.name}: closed before delivering anything`));
      else this.retryNow("closed");
      return;
    }
    this.fail("watch", err);
  }

  private retryNow(reason: RestartReason): void {
    this.schedule(0, reason);
  }

  private fail(phase: "list" | "watch", cause: unknown): void {
    this.abandonAttempt();
    if (this.isFinished()) return;
    this.failures++;
    this.emit({ type: "error", phase, cause });
    if (this.maxFailures > 0 && this.failures >= this.maxFailures) {
      this.state = "gave-up";
      for (const t of [this.watchdogTimer, this.relistTimer]) if (t) this.clock.clearTimeout(t);
      this.watchdogTimer = this.relistTimer = undefined;
      this.emit({ type: "give-up", failures: this.failures, cause });
      this.rejectSyncWaiters(
        new Error(`watch ${this.name}: gave up after ${this.failures} failures`, { cause }),
      );
      return;
    }
    const reason: RestartReason = this.needList && this.relistReason === "gone" ? "gone" : "error";
    this.schedule(backoffDelay(this.failures, { ...this.backoff, random: this.random }), reason);
  }

  private schedule(delayMs: number, reason: RestartReason): void {
    this.abandonAttempt();
    this.state = "backoff";
    this.emit({ type: "reconnect", reason, attempt: this.failures, delayMs });
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delayMs);
  }

  /** Drops the current watch or pending reconnect; their callbacks become no-ops. */
  private abandonAttempt(): void {
    this.generation++;
    if (this.reconnectTimer) {
      this.clock.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    const h = this.handle;
    this.handle = undefined;
    if (h) {
      try {
        h.stop();
      } catch {
        // a transport that throws on stop has nothing left for us to clean up
      }
    }
  }

  // ---- timers ----

  private scheduleWatchdog(): void {
    this.watchdogTimer = this.clock.setTimeout(() => {
      this.watchdogTimer = undefined;
      if (this.isFinished()) return;
      const silentMs = this.clock.now() - this.lastSeen;
      const active = this.state === "watching" || this.state === "listing" || this.state === "connecting";
      if (active && silentMs >= this.lastSeenLimitMs) {
        this.emit({ type: "watchdog", silentMs });
        this.retryNow("watchdog");
      }
      this.scheduleWatchdog();
    }, this.watchdogIntervalMs);
  }

  private scheduleRelist(): void {
    if (this.isFinished()) return;
    if (this.relistTimer) this.clock.clearTimeout(this.relistTimer);
    const delay = this.relistIntervalMs * (1 + 0.1 * this.random());
    this.relistTimer = this.clock.setTimeout(() => {
      this.relistTimer = undefined;
      if (this.isFinished()) return;
      this.needList = true;
      this.relistReason = "periodic";
      // A healthy watch is replaced at once; otherwise the pending attempt will list.
      if (this.state === "watching") this.retryNow("relist");
      else this.scheduleRelist();
    }, delay);
  }

  // ---- plumbing ----

  private isFinished(): boolean {
    return this.state === "stopped" || this.state === "gave-up";
  }

  private dispatch(e: ChangeEvent<T>): void {
    for (const h of this.changeHandlers) this.callChange(h, e);
  }

  private callChange(h: (e: ChangeEvent<T>) => void, e: ChangeEvent<T>): void {
    try {
      h(e);
    } catch (cause) {
      // A bug in a subscriber must not stop the watch.
      this.emit({ type: "error", phase: "handler", cause });
    }
  }

  private emit(e: WatchSourceEvent): void {
    for (const h of this.eventHandlers) {
      try {
        h(e);
      } catch {
        // lifecycle listeners are metrics and logs; never let them break the loop
      }
    }
  }

  private rejectSyncWaiters(err: Error): void {
    for (const w of this.syncWaiters.splice(0)) w.reject(err);
  }
}

function sameVersion(a: KubeObject, b: KubeObject): boolean {
  const ra = a.metadata?.resourceVersion;
  return ra !== undefined && ra !== "" && ra === b.metadata?.resourceVersion;
}
