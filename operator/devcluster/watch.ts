// Watch streams (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):
// headers flushed at once, one JSON event per line, synthetic ADDED events for resourceVersion ""/"0",
// history replay for a given resourceVersion, a 410 ERROR event (then close) when that history is gone,
// selector transitions (leaving the selection is DELETED, entering it ADDED), one-row Tables for kubectl get -w,
// and bookmarks when asked.
import type { ServerResponse } from "node:http";
import type { ResourceType } from "./registry.js";
import type { FieldSelector, LabelSelector } from "./selectors.js";
import type { Store, StoreEvent } from "./store.js";
import { toTable, type IncludeObject } from "./tables.js";
import { badRequest, gone } from "./status.js";
import { clone, isObj, type Obj } from "./util.js";

export interface WatchSpec {
  type: ResourceType;
  namespace?: string;
  label?: LabelSelector;
  field?: FieldSelector;
  resourceVersion?: string;
  bookmarks: boolean;
  timeoutSeconds?: number;
  table?: IncludeObject;
  /** sendInitialEvents=true: ADDED for every object, then a BOOKMARK marking the end of them. */
  sendInitialEvents?: boolean;
  /** Delay between bookmarks (ms). */
  bookmarkIntervalMs?: number;
}

/** JSON of stored objects, computed once however many watchers send them. */
const jsonCache = new WeakMap<Obj, string>();
function serialized(o: Obj): string {
  let j = jsonCache.get(o);
  if (j === undefined) {
    j = JSON.stringify(o);
    jsonCache.set(o, j);
  }
  return j;
}

/** Bound on bytes queued for a slow watcher before its stream is closed (it will resume or relist). */
const MAX_BUFFERED = 16 * 1024 * 1024;

export class WatchHub {
  private readonly active = new Set<{ close: () => void; storeKey: string }>();
  /** Watches answered with 410 Expired so far (tests assert the relist path ran). */
  expired = 0;

  constructor(private readonly store: Store) {}

  get size(): number {
    return this.active.size;
  }

  /** Ends every open watch (clients resume from their last resourceVersion). */
  dropAll(): void {
    for (const w of [...this.active]) w.close();
  }

  /** Ends the watches of one store key (a CRD changed). */
  dropFor(storeKey: string): void {
    for (const w of [...this.active]) if (w.storeKey === storeKey) w.close();
  }

  serve(spec: WatchSpec, res: ServerResponse, onClose: (cb: () => void) => void): void {
    const { type, store } = { type: spec.type, store: this.store };
    const matches = (o: Obj | undefined): boolean => {
      if (!o) return false;
      const m = isObj(o.metadata) ? o.metadata : {};
      if (spec.namespace !== undefined && m.namespace !== spec.namespace) return false;
      if (spec.label && !spec.label((isObj(m.labels) ? m.labels : {}) as Record<string, string>))
        return false;
      if (spec.field && !spec.field(type.fromStored ? type.fromStored(o) : o)) return false;
      return true;
    };
    let headerSent = false;
    const view = (o: Obj): Obj => {
      // stored objects are immutable once committed and carry apiVersion/kind: share them across watchers
      const out = type.fromStored ? type.fromStored(clone(o)) : o;
      if (out.apiVersion === undefined)
        out.apiVersion = type.group ? `${type.group}/${type.version}` : type.version;
      if (out.kind === undefined) out.kind = type.kind;
      if (spec.table) {
        const t = toTable(type, [out], spec.table, headerSent);
        headerSent = true;
        t.metadata = { resourceVersion: isObj(out.metadata) ? out.metadata.resourceVersion : undefined };
        return t;
      }
      return out;
    };
    let closed = false;
    // Events are batched per tick: one TLS write for a burst instead of one per event.
    let pending = "";
    const flush = () => {
      if (pending === "" || closed) return;
      const chunk = pending;
      pending = "";
      res.write(chunk);
      if (res.writableLength > MAX_BUFFERED) close();
    };
    const send = (evType: string, object: Obj) => {
      if (closed) return;
      if (pending === "") setImmediate(flush);
      pending += `{"type":"${evType}","object":${serialized(object)}}\n`;
    };
    const onEvent = (ev: StoreEvent) => {
      const now = ev.type === "DELETED" ? false : matches(ev.object);
      const before = ev.type === "ADDED" ? false : matches(ev.old);
      if (ev.type === "DELETED") {
        if (before || matches(ev.object)) send("DELETED", view(ev.object));
        return;
      }
      if (now && before) send("MODIFIED", view(ev.object));
      else if (now) send("ADDED", view(ev.object));
      else if (before) send("DELETED", view(ev.object));
    };
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe = () => {};
    const entry = { storeKey: type.storeKey, close: () => close() };
    const close = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      this.active.delete(entry);
      const rest = pending;
      pending = "";
      res.end(rest === "" ? undefined : rest);
    };
    onClose(close);

    res.writeHead(200, {
      "Content-Type": "application/json",
      "Cache-Control": "no-cache, private",
      "Transfer-Encoding": "chunked",
    });
    res.flushHeaders();

    const rvParam = spec.resourceVersion;
    let initial: StoreEvent[] | undefined;
    if (rvParam === undefined || rvParam === "" || rvParam === "0" || spec.sendInitialEvents) {
      for (const o of store.listRaw(type.storeKey, spec.namespace)) if (matches(o)) send("ADDED", view(o));
      initial = [];
      if (spec.sendInitialEvents) {
        // https://kubernetes.io/docs/reference/using-api/api-concepts/#streaming-lists
        send("BOOKMARK", {
          kind: type.kind,
          apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
          metadata: {
            resourceVersion: String(store.currentRv()),
            annotations: { "k8s.io/initial-events-end": "true" },
          },
        });
      }
    } else {
      const rv = Number(rvParam);
      if (!Number.isFinite(rv)) {
        send("ERROR", badRequest(`invalid resource version: ${rvParam}`).toStatus() as unknown as Obj);
        close();
        return;
      }
      initial = store.since(type.storeKey, rv);
      if (!initial) {
        this.expired++;
        // 410 as an ERROR event, then close: client-node clears its RV and relists when the stream ends.
        send(
          "ERROR",
          gone(
            `too old resource version: ${rv} (${store.oldestRv(type.storeKey)})`,
          ).toStatus() as unknown as Obj,
        );
        close();
        return;
      }
    }
    for (const ev of initial) onEvent(ev);
    unsubscribe = store.subscribe(type.storeKey, onEvent);
    this.active.add(entry);

    if (spec.timeoutSeconds !== undefined && spec.timeoutSeconds > 0)
      timers.push(setTimeout(close, spec.timeoutSeconds * 1000));
    if (spec.bookmarks) {
      const every = spec.bookmarkIntervalMs ?? 30_000;
      const tick = () => {
        if (closed) return;
        send("BOOKMARK", {
          kind: type.kind,
          apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
          metadata: { resourceVersion: String(store.currentRv()) },
        });
        timers.push(setTimeout(tick, every));
      };
      timers.push(setTimeout(tick, every));
    }
  }
}
