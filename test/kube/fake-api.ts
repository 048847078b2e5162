/** An in-memory list/watch server for watch-source tests: objects, resourceVersions, watches, faults. */
import type {
  ListRequest,
  ListWatchTransport,
  WatchHandle,
  WatchRequest,
} from "../../operator/kube/watch-source.js";
import type { KubeObject, ListPage, WatchEventType } from "../../operator/kube/types.js";
import { KubeApiError } from "../../operator/kube/types.js";

export interface FakeWatch {
  req: WatchRequest;
  onEvent: (type: WatchEventType, obj: unknown) => void;
  onDone: (err: unknown) => void;
  stopped: boolean;
}

export class FakeApi implements ListWatchTransport {
  rv = 100;
  uidSeq = 0;
  readonly objects = new Map<string, KubeObject>(); // by name
  readonly watches: FakeWatch[] = [];
  readonly lists: ListRequest[] = [];
  /** Errors the next list calls reject with, in order. */
  listErrors: unknown[] = [];
  /** Errors the next watch calls reject with, in order. */
  watchErrors: unknown[] = [];
  /** Watches from a resourceVersion below this get 410 (as an ERROR event). */
  compactedBelow = 0;
  /** When false, changes are not sent to open watches (a silently dead stream). */
  deliver = true;

  async list(req: ListRequest): Promise<ListPage> {
    this.lists.push(req);
    const e = this.listErrors.shift();
    if (e) throw e;
    const all = [...this.objects.values()].sort((a, b) =>
      String(a.metadata?.name).localeCompare(String(b.metadata?.name)),
    );
    const start = req.continueToken ? Number(req.continueToken) : 0;
    const items = all.slice(start, start + req.limit).map((o) => structuredClone(o));
    const next = start + req.limit < all.length ? String(start + req.limit) : undefined;
    return { items, resourceVersion: String(this.rv), continueToken: next };
  }

  async watch(
    req: WatchRequest,
    onEvent: (type: WatchEventType, obj: unknown) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle> {
    const e = this.watchErrors.shift();
    if (e) throw e;
    const w: FakeWatch = { req, onEvent, onDone, stopped: false };
    this.watches.push(w);
    if (Number(req.resourceVersion) < this.compactedBelow) {
      queueMicrotask(() => {
        if (!w.stopped)
          onEvent("ERROR", {
            kind: "Status",
            code: 410,
            reason: "Expired",
            message: "too old resource version",
          });
      });
    }
    return { stop: () => (w.stopped = true) };
  }

  get open(): FakeWatch[] {
    return this.watches.filter((w) => !w.stopped);
  }

  get current(): FakeWatch {
    const w = this.open.at(-1);
    if (!w) throw new Error("no open watch");
    return w;
  }

  private send(type: WatchEventType, obj: KubeObject): void {
    if (!this.deliver) return;
    for (const w of this.open) w.onEvent(type, structuredClone(obj));
  }

  create(name: string, namespace = "ns", extra: Record<string, unknown> = {}): KubeObject {
    const obj: KubeObject = {
      kind: "Thing",
      metadata: { name, namespace, uid: `uid-${++this.uidSeq}`, resourceVersion: String(++this.rv) },
      ...extra,
    };
    this.objects.set(name, obj);
    this.send("ADDED", obj);
    return obj;
  }

  update(name: string, spec: unknown): KubeObject {
    const old = this.objects.get(name);
    if (!old) throw new Error(`no ${name}`);
    const obj: KubeObject = {
      ...old,
      spec,
      metadata: { ...old.metadata, resourceVersion: String(++this.rv) },
    };
    this.objects.set(name, obj);
    this.send("MODIFIED", obj);
    return obj;
  }

  remove(name: string): void {
    const old = this.objects.get(name);
    if (!old) throw new Error(`no ${name}`);
    this.objects.delete(name);
    this.send("DELETED", { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.rv) } });
  }

  bookmark(): void {
    for (const w of this.open)
      w.onEvent("BOOKMARK", { kind: "Thing", metadata: { resourceVersion: String(this.rv) } });
  }

  /** Ends the current watch: `null` for a clean close, or an error. */
  close(err: unknown = null): void {
    const w = this.current;
    w.stopped = true;
    w.onDone(err);
  }
}

export const gone = (): KubeApiError => new KubeApiError(410, "Gone");
export const connReset = (): Error => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
