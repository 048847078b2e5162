/**
 * The local cache a watch source keeps: objects by uid, with a `namespace/name` index. A uid key
 * means an object deleted and re-created under the same name during a disconnect is seen as a
 * DELETED of the old one and an ADDED of the new one, not a silent MODIFIED.
 */
import type { KubeObject } from "./types.js";
import { objectKey } from "./types.js";

/** The uid, or the `namespace/name` key for objects without one (never from a real API server). */
export function uidOf(obj: KubeObject): string {
  return obj.metadata?.uid || `key:${objectKey(obj)}`;
}

export class ObjectStore<T extends KubeObject = KubeObject> {
  private readonly byUid = new Map<string, T>();
  private readonly uidByKey = new Map<string, string>();

  /** The object `namespace/name` (or `name` when cluster-scoped). */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.getByKey(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    const uid = this.uidByKey.get(key);
    return uid === undefined ? undefined : this.byUid.get(uid);
  }

  getByUid(uid: string): T | undefined {
    return this.byUid.get(uid);
  }

  /** Every object, or those in one namespace. A fresh array; the objects are shared, do not mutate them. */
  list(namespace?: string): T[] {
    const all = [...this.byUid.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  /** Keys (`namespace/name`) of every object. */
  keys(): string[] {
    return [...this.uidByKey.keys()];
  }

  get size(): number {
    return this.byUid.size;
  }

  /** Inserts or replaces; returns the previous object with that uid. */
  upsert(obj: T): T | undefined {
    const uid = uidOf(obj);
    const old = this.byUid.get(uid);
    if (old) {
      const oldKey = objectKey(old);
      if (this.uidByKey.get(oldKey) === uid) this.uidByKey.delete(oldKey);
    }
    this.byUid.set(uid, obj);
    this.uidByKey.set(objectKey(obj), uid);
    return old;
  }

  /** Removes by uid; returns what was removed. */
  remove(uid: string): T | undefined {
    const old = this.byUid.get(uid);
    if (!old) return undefined;
    this.byUid.delete(uid);
    const key = objectKey(old);
    if (this.uidByKey.get(key) === uid) this.uidByKey.delete(key);
    return old;
  }

  uids(): IterableIterator<string> {
    return this.byUid.keys();
  }
}
