// Optional persistence under --data DIR: a snapshot plus a write-ahead log of every commit, each
// record fsync'd before the write is acknowledged. On start the snapshot is loaded, the log replayed,
// and a fresh snapshot written (the log truncated), so the resourceVersion stays monotonic across restarts.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { EventType } from "./store.js";
import type { Obj } from "./util.js";

export interface WalRecord {
  rv: number;
  storeKey: string;
  type: EventType;
  object: Obj;
}

export interface Wal {
  append(rec: WalRecord): void;
  /** Records appended since the last snapshot. */
  readonly length: number;
  /** Writes a fresh snapshot of `state` and empties the log. */
  compact(state: LoadedState): void;
  close(): void;
}

export interface LoadedState {
  rv: number;
  objects: { storeKey: string; object: Obj }[];
}

function objKey(storeKey: string, o: Obj): string {
  const m = (o.metadata ?? {}) as Obj;
  return `${storeKey}|${String(m.namespace ?? "")}/${String(m.name)}`;
}

/** Reads the snapshot and replays the log. A torn last line (crash mid-write) is ignored. */
export function loadState(dir: string): LoadedState {
  const snapPath = join(dir, "snapshot.json");
  const walPath = join(dir, "wal.jsonl");
  let rv = 0;
  const objects = new Map<string, { storeKey: string; object: Obj }>();
  if (existsSync(snapPath)) {
    const snap = JSON.parse(readFileSync(snapPath, "utf8")) as LoadedState;
    rv = snap.rv;
    for (const e of snap.objects) objects.set(objKey(e.storeKey, e.object), e);
  }
  if (existsSync(walPath)) {
    for (const line of readFileSync(walPath, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      let rec: WalRecord;
      try {
        rec = JSON.parse(line) as WalRecord;
      } catch {
        break;
      }
      rv = Math.max(rv, rec.rv);
      const k = objKey(rec.storeKey, rec.object);
      if (rec.type === "DELETED") objects.delete(k);
      else objects.set(k, { storeKey: rec.storeKey, object: rec.object });
    }
  }
  return { rv, objects: [...objects.values()] };
}

function writeSnapshot(dir: string, state: LoadedState): void {
  const snapPath = join(dir, "snapshot.json");
  const tmp = `${snapPath}.tmp`;
  const fd0 = openSync(tmp, "w");
  writeSync(fd0, JSON.stringify(state));
  fsyncSync(fd0);
  closeSync(fd0);
  renameSync(tmp, snapPath);
}

/** Writes a snapshot atomically (write, fsync, rename) and starts an empty log. */
export function openWal(dir: string, state: LoadedState): Wal {
  mkdirSync(dir, { recursive: true });
  const walPath = join(dir, "wal.jsonl");
  writeSnapshot(dir, state);
  writeFileSync(walPath, "");
  let fd = openSync(walPath, "a");
  let closed = false;
  let length = 0;
  return {
    get length() {
      return length;
    },
    append(rec) {
      if (closed) return;
      writeSync(fd, `${JSON.stringify(rec)}\n`);
      fsyncSync(fd);
      length++;
    },
    compact(next) {
      if (closed) return;
      // the snapshot lands before the log is emptied: a crash in between replays records already in it
      writeSnapshot(dir, next);
      closeSync(fd);
      writeFileSync(walPath, "");
      fd = openSync(walPath, "a");
      length = 0;
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}
