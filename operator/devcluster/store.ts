// The generic object store: one cluster-wide monotonic resourceVersion (like etcd's revision), objects
// keyed by store key then `namespace/name`, a bounded per-type history of watch events so a watch can
// resume from a recent resourceVersion, and 410 Gone once the history it needs was discarded
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
import type { Wal } from "./persistence.js";
import { clone, meta, type Obj } from "./util.js";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: EventType;
  storeKey: string;
  rv: number;
  object: Obj;
  /** The object before the change (for watch selector transitions). */
  old?: Obj;
}

export type Listener = (ev: StoreEvent) => void;

interface History {
  events: StoreEvent[];
  /** Highest RV of any discarded event: watches from below it get 410. */
  compactedRv: number;
}

/** Log records after which the write-ahead log is folded into a new snapshot. */
const WAL_COMPACT_RECORDS = 5000;

export function objectKey(ns: string | undefined, name: string): string {
  return `${ns ?? ""}/${name}`;
}

export class Store {
  private rv = 0;
  private readonly data = new Map<string, Map<string, Obj>>();
  private readonly history = new Map<string, History>();
  private readonly listeners = new Map<string, Set<Listener>>();
  /** The RV at start: history before it is gone (a restart loses the in-memory watch cache). */
  private startRv = 0;

  constructor(
    private readonly historyLimit = 10_000,
    private wal?: Wal,
  ) {}

  /** Loads persisted objects and RV (called once before serving). */
  load(rv: number, objects: { storeKey: string; object: Obj }[]): void {
    this.rv = rv;
    this.startRv = rv;
    for (const { storeKey, object } of objects) {
      const m = meta(object);
      this.bucket(storeKey).set(objectKey(m.namespace as string | undefined, String(m.name)), object);
    }
  }

  setWal(wal: Wal | undefined): void {
    this.wal = wal;
  }

  currentRv(): number {
    return this.rv;
  }

  private bucket(storeKey: string): Map<string, Obj> {
    let b = this.data.get(storeKey);
    if (!b) {
      b = new Map();
      this.data.set(storeKey, b);
    }
    return b;
  }

  /** A copy of the stored object, or undefined. */
  get(storeKey: string, ns: string | undefined, name: string): Obj | undefined {
    const o = this.data.get(storeKey)?.get(objectKey(ns, name));
    return o ? clone(o) : undefined;
  }

  /** Stored objects (not copies: callers must not mutate) sorted by namespace then name, like etcd key order. */
  listRaw(storeKey: string, ns?: string): Obj[] {
    const b = this.data.get(storeKey);
    if (!b) return [];
    const keys = [...b.keys()].sort();
    const out: Obj[] = [];
    for (const k of keys) {
      if (ns !== undefined && !k.startsWith(`${ns}/`)) continue;
      const o = b.get(k);
      if (o) out.push(o);
    }
    return out;
  }

  count(storeKey: string): number {
    return this.data.get(storeKey)?.size ?? 0;
  }

  storeKeys(): string[] {
    return [...this.data.keys()];
  }

  /**
   * Writes an object (ADDED/MODIFIED) or removes it (DELETED), stamping a new resourceVersion on it.
   * The object is owned by the store from then on; the returned reference must not be mutated.
   */
  commit(storeKey: string, type: EventType, object: Obj): Obj {
    const m = meta(object);
    const key = objectKey(m.namespace as string | undefined, String(m.name));
    const b = this.bucket(storeKey);
    const old = b.get(key);
    this.rv++;
    // The caller hands the object over (every write path builds a fresh copy): no defensive clone.
    const stored = object;
    meta(stored).resourceVersion = String(this.rv);
    // write-ahead: the record is on disk (fsync'd) before the change is visible or acknowledged
    this.wal?.append({ rv: this.rv, storeKey, type, object: stored });
    if (type === "DELETED") b.delete(key);
    else b.set(key, stored);
    if (this.wal && this.wal.length >= WAL_COMPACT_RECORDS)
      this.wal.compact({ rv: this.rv, objects: [...this.entries()] });
    const ev: StoreEvent = { type, storeKey, rv: this.rv, object: stored };
    if (old) ev.old = old;
    this.record(ev);
    for (const l of this.listeners.get(storeKey) ?? []) {
      try {
        l(ev);
      } catch {
        // a broken watcher must not break the write
      }
    }
    return stored;
  }

  private record(ev: StoreEvent): void {
    let h = this.history.get(ev.storeKey);
    if (!h) {
      h = { events: [], compactedRv: this.startRv };
      this.history.set(ev.storeKey, h);
    }
    h.events.push(ev);
    if (h.events.length > this.historyLimit) {
      const dropped = h.events.splice(0, h.events.length - this.historyLimit);
      const last = dropped[dropped.length - 1];
      if (last) h.compactedRv = Math.max(h.compactedRv, last.rv);
    }
  }

  /**
   * Events after `rv` for a store key, or undefined when some were discarded (the caller answers 410).
   * A list's RV is always watchable: events are only discarded when newer ones exceed the limit.
   */
  since(storeKey: string, rv: number): StoreEvent[] | undefined {
    const h = this.history.get(storeKey);
    const compacted = h?.compactedRv ?? this.startRv;
    if (rv < compacted) return undefined;
    if (!h) return [];
    // binary search for the first event with ev.rv > rv
    let lo = 0;
    let hi = h.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((h.events[mid]?.rv ?? 0) <= rv) lo = mid + 1;
      else hi = mid;
    }
    return h.events.slice(lo);
  }

  /** The oldest RV a watch can resume from for this key (for the 410 message). */
  oldestRv(storeKey: string): number {
    return this.history.get(storeKey)?.compactedRv ?? this.startRv;
  }

  /** Drops all history (fault injection): every resume from an older RV then gets 410. */
  compact(): void {
    for (const h of this.history.values()) {
      h.events = [];
      h.compactedRv = this.rv;
    }
    this.startRv = this.rv;
  }

  subscribe(storeKey: string, l: Listener): () => void {
    let s = this.listeners.get(storeKey);
    if (!s) {
      s = new Set();
      this.listeners.set(storeKey, s);
    }
    s.add(l);
    return () => s.delete(l);
  }

  /** Every stored object (persistence snapshots). */
  *entries(): Generator<{ storeKey: string; object: Obj }> {
    for (const [storeKey, b] of this.data) for (const object of b.values()) yield { storeKey, object };
  }
}
