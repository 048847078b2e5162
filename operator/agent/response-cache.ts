// The `cache` fallback: the last good (2xx) response to each GET, kept to serve stale when the upstream
// fails. Bounded three ways: `maxEntries` (least recently stored evicted first), `ttlMs` (older entries are
// never served), and a per-entry body cap (bigger responses are simply not cached).

export interface CachedResponse {
  readonly status: number;
  /** Raw header pairs as received, hop-by-hop headers already removed. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** Monotonic ms when stored. */
  readonly storedAt: number;
}

export class ResponseCache {
  private readonly entries = new Map<string, CachedResponse>();
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly maxBodyBytes: number;

  constructor(ttlMs: number, maxEntries: number, maxBodyBytes = 256 * 1024) {
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
    this.maxBodyBytes = maxBodyBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  store(key: string, entry: CachedResponse): void {
    if (entry.body.length > this.maxBodyBytes) return;
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  /** The entry for `key` if younger than the TTL at `now`; an expired one is dropped. */
  lookup(key: string, now: number): CachedResponse | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (now - e.storedAt > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }
}
