// What survives a restart of the agent: the last config it accepted (so it can serve before the source
// answers, or when the source's copy is broken: fail static) and each breaker's state with its open-until
// time (so a restarted sidecar does not hammer an upstream it had just cut off).
//
// One JSON file, written atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the
// old file or the new one, never half of one. Writes are coalesced: a save requested while one runs
// becomes one more write of the newest snapshot. On load, breaker states older than `maxAgeMs` or already
// past their open-until are dropped; times are wall-clock epoch ms because monotonic clocks reset.
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { BreakerStateName } from "../resilience/circuit-breaker.js";

export const STATE_FILE = "agent-state.json";
const FORMAT = 1;

export interface PersistedBreaker {
  /** The upstream rule's name. */
  readonly upstream: string;
  /** Fingerprint of the breaker rule; a state is restored only into an identical rule. */
  readonly ruleKey: string;
  readonly state: BreakerStateName;
  /** For `open`: when it may half-open (epoch ms). */
  readonly openUntil?: number;
  /** Trips since it last closed (drives the growing open duration). */
  readonly trips: number;
}

export interface PersistedState {
  readonly format: typeof FORMAT;
  /** Epoch ms of the write. */
  readonly savedAt: number;
  /** The last accepted config document, as received. */
  readonly config?: unknown;
  readonly configVersion?: string;
  readonly breakers: readonly PersistedBreaker[];
}

export interface LoadedState {
  readonly config: unknown;
  readonly configVersion: string | undefined;
  /** Breakers still worth restoring (fresh, and open-until not passed for open ones). */
  readonly breakers: readonly PersistedBreaker[];
  readonly savedAt: number;
}

export interface StateStoreOptions {
  /** Breaker states older than this (ms) are not restored. Default 600000 (10 min). */
  maxAgeMs?: number;
  /** Wall clock. Default Date.now. */
  now?: () => number;
}

export class StateStore {
  readonly file: string;
  private readonly dir: string;
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  private writing: Promise<void> | undefined;
  private pending: (() => PersistedState) | undefined;
  /** Last write error, for /status. */
  lastError: string | undefined;

  constructor(dir: string, options: StateStoreOptions = {}) {
    this.dir = dir;
    this.file = join(dir, STATE_FILE);
    this.maxAgeMs = options.maxAgeMs ?? 600_000;
    this.now = options.now ?? Date.now;
  }

  /** Reads the state file; undefined when absent. Never throws: a corrupt file is reported and ignored. */
  async load(): Promise<{ state: LoadedState | undefined; problem: string | undefined }> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return {
        state: undefined,
        problem: code === "ENOENT" ? undefined : `cannot read ${this.file}: ${code}`,
      };
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { state: undefined, problem: `${this.file} is not valid JSON; ignored` };
    }
    if (!isRecord(raw) || raw.format !== FORMAT || typeof raw.savedAt !== "number") {
      return { state: undefined, problem: `${this.file} has an unknown format; ignored` };
    }
    const now = this.now();
    const fresh = now - raw.savedAt <= this.maxAgeMs && raw.savedAt <= now + 60_000;
    const breakers: PersistedBreaker[] = [];
    if (fresh && Array.isArray(raw.breakers)) {
      for (const b of raw.breakers as unknown[]) {
        if (!isRecord(b) || typeof b.upstream !== "string" || typeof b.ruleKey !== "string") continue;
        if (b.state !== "open" && b.state !== "half-open" && b.state !== "closed") continue;
        const trips = typeof b.trips === "number" && Number.isInteger(b.trips) && b.trips >= 0 ? b.trips : 0;
        if (b.state === "open") {
          if (typeof b.openUntil !== "number" || b.openUntil <= now) continue;
          breakers.push({
            upstream: b.upstream,
            ruleKey: b.ruleKey,
            state: "open",
            openUntil: b.openUntil,
            trips,
          });
        } else {
          breakers.push({ upstream: b.upstream, ruleKey: b.ruleKey, state: b.state, trips });
        }
      }
    }
    return {
      state: {
        config: raw.config,
        configVersion: typeof raw.configVersion === "string" ? raw.configVersion : undefined,
        breakers,
        savedAt: raw.savedAt,
      },
      problem: undefined,
    };
  }

  /**
   * Asks for a write of `snapshot()` (called when the write starts, so the newest state is written).
   * Resolves when a write including this request finished; never rejects (errors go to `lastError`).
   */
  save(snapshot: () => PersistedState): Promise<void> {
    this.pending = snapshot;
    if (!this.writing) this.writing = this.drain();
    return this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const snap = this.pending;
        this.pending = undefined;
        try {
          await this.writeAtomic(JSON.stringify(snap()));
          this.lastError = undefined;
        } catch (err) {
          this.lastError = (err as Error).message;
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async writeAtomic(data: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    // Make the rename itself durable.
    const dh = await open(this.dir, "r").catch(() => undefined);
    if (dh) {
      await dh.sync().catch(() => undefined);
      await dh.close();
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
