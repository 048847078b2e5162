// The controllers a real control plane runs that clients depend on:
// - CRDs: names accepted and Established conditions, types registered/unregistered, CR cleanup on delete
//   (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/);
// - namespace lifecycle: a deleted namespace is Terminating until everything in it is gone
//   (https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/);
// - garbage collection of objects whose owners are all gone (Background propagation)
//   (https://kubernetes.io/docs/concepts/architecture/garbage-collection/).
import { validateCrd } from "./crd-schema.js";
import type { Api, RequestInfo } from "./api.js";
import { typesFromCrd, type Registry, type ResourceType } from "./registry.js";
import { invalid } from "./status.js";
import type { Store } from "./store.js";
import type { WatchHub } from "./watch.js";
import { isObj, meta, nowTime, str, type Obj } from "./util.js";

function condition(type: string, reason: string, message: string, old: Obj | undefined): Obj {
  const prev =
    old && isObj(old.status) && Array.isArray(old.status.conditions)
      ? old.status.conditions.find((c) => isObj(c) && c.type === type)
      : undefined;
  const keep = isObj(prev) && prev.status === "True";
  return {
    type,
    status: "True",
    lastTransitionTime: keep ? prev.lastTransitionTime : nowTime(),
    reason,
    message,
  };
}

/** Validates a CRD and fills its status (what the apiextensions controllers set shortly after create). */
export function prepareCrd(obj: Obj, old: Obj | undefined): void {
  const spec = isObj(obj.spec) ? obj.spec : {};
  const names = isObj(spec.names) ? spec.names : {};
  const group = str(spec.group) ?? "";
  const plural = str(names.plural) ?? "";
  const kind = str(names.kind) ?? "";
  const name = str(meta(obj).name) ?? "";
  const causes = [];
  if (!group) causes.push({ reason: "FieldValueRequired", message: "Required value", field: "spec.group" });
  if (!plural)
    causes.push({ reason: "FieldValueRequired", message: "Required value", field: "spec.names.plural" });
  if (!kind)
    causes.push({ reason: "FieldValueRequired", message: "Required value", field: "spec.names.kind" });
  if (name !== `${plural}.${group}`)
    causes.push({
      reason: "FieldValueInvalid",
      message: `Invalid value: "${name}": must be spec.names.plural+"."+spec.group`,
      field: "metadata.name",
    });
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObj) : [];
  if (versions.filter((v) => v.storage === true).length !== 1)
    causes.push({
      reason: "FieldValueInvalid",
      message: "Invalid value: must have exactly one version marked as storage version",
      field: "spec.versions",
    });
  causes.push(...validateCrd(obj));
  if (causes.length > 0) throw invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes);
  const accepted: Obj = {
    ...names,
    singular: str(names.singular) ?? kind.toLowerCase(),
    listKind: str(names.listKind) ?? `${kind}List`,
  };
  const storage = versions.find((v) => v.storage === true);
  const oldStatus = old && isObj(old.status) ? old.status : {};
  const stored = Array.isArray(oldStatus.storedVersions) ? oldStatus.storedVersions.map(String) : [];
  if (storage && !stored.includes(String(storage.name))) stored.push(String(storage.name));
  obj.status = {
    conditions: [
      condition("NamesAccepted", "NoConflicts", "no conflicts found", old),
      condition("Established", "InitialNamesAccepted", "the initial names have been accepted", old),
    ],
    acceptedNames: accepted,
    storedVersions: stored,
  };
}

interface OwnerRef {
  storeKey: string;
  ns: string | undefined;
  name: string;
  uid: string;
}

export class Controllers {
  private readonly pendingNs = new Set<string>();
  /** Owners deleted with propagationPolicy=Foreground, waiting for their dependents to go. */
  private readonly foreground = new Map<string, OwnerRef>();

  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly hub: WatchHub,
    private readonly api: () => Api,
  ) {}

  private info(t: ResourceType, ns: string | undefined, name: string): RequestInfo {
    const i: RequestInfo = {
      type: t,
      name,
      dryRun: false,
      fieldValidation: "Ignore",
      fieldManager: "bulwark-dev-cluster",
      username: "system:serviceaccount:kube-system:generic-garbage-collector",
      warnings: [],
    };
    if (ns !== undefined) i.namespace = ns;
    return i;
  }

  /** (Re)registers the types of every stored CRD (at start-up). */
  syncAllCrds(): void {
    for (const crd of this.store.listRaw("apiextensions.k8s.io/customresourcedefinitions"))
      this.registerCrd(crd);
  }

  private registerCrd(crd: Obj): void {
    for (const t of this.registry.all()) {
      if (t.crd && str(meta(t.crd.crd).name) === str(meta(crd).name))
        this.registry.remove(t.group, t.version, t.resource);
    }
    for (const t of typesFromCrd(crd)) this.registry.add(t);
  }

  private unregisterCrd(crd: Obj): void {
    for (const t of this.registry.all()) {
      if (t.crd && str(meta(t.crd.crd).name) === str(meta(crd).name))
        this.registry.remove(t.group, t.version, t.resource);
    }
  }

  afterCommit(t: ResourceType, evType: "ADDED" | "MODIFIED" | "DELETED", obj: Obj): void {
    const m = meta(obj);
    if (t.resource === "customresourcedefinitions" && t.group === "apiextensions.k8s.io") {
      const spec = isObj(obj.spec) ? obj.spec : {};
      const storeKey = `${String(spec.group)}/${String(isObj(spec.names) ? spec.names.plural : "")}`;
      if (evType === "DELETED") {
        this.unregisterCrd(obj);
        this.hub.dropFor(storeKey);
      } else if (m.deletionTimestamp) {
        this.schedule(() => this.cleanupCrd(obj));
      } else {
        this.registerCrd(obj);
        if (evType === "MODIFIED") this.hub.dropFor(storeKey);
      }
    }
    if (evType === "DELETED" && str(m.uid)) {
      const uid = String(m.uid);
      this.schedule(() => this.collectDependents(uid));
      if (this.foreground.size > 0) this.schedule(() => this.reconcileForeground());
    }
    if (evType === "MODIFIED" && m.deletionTimestamp && Array.isArray(m.finalizers)) {
      const ref = { storeKey: t.storeKey, ns: str(m.namespace), name: String(m.name), uid: String(m.uid) };
      if (m.finalizers.includes("orphan")) this.schedule(() => this.orphanDependents(ref));
      if (m.finalizers.includes("foregroundDeletion")) {
        this.foreground.set(ref.uid, ref);
        this.schedule(() => this.reconcileForeground());
      }
    }
    if (t.resource === "namespaces" && !t.group && m.deletionTimestamp) this.pendingNs.add(String(m.name));
    if (t.resource === "namespaces" && !t.group && evType === "ADDED") {
      // the serviceaccount controller gives every namespace a "default" ServiceAccount
      const ns = String(m.name);
      const saType = this.registry.get("", "v1", "serviceaccounts");
      if (saType && !this.store.get(saType.storeKey, ns, "default"))
        this.schedule(() =>
          this.api()
            .create(this.info(saType, ns, "default"), { metadata: { name: "default" } })
            .then(() => undefined),
        );
    }
    if (
      t.namespaced &&
      typeof m.namespace === "string" &&
      this.pendingNs.size > 0 &&
      this.pendingNs.has(m.namespace)
    ) {
      // something in a terminating namespace changed: look again
    }
    if (this.pendingNs.size > 0) this.schedule(() => this.reconcileNamespaces());
  }

  private schedule(fn: () => Promise<void> | void): void {
    setImmediate(() => {
      void Promise.resolve()
        .then(fn)
        .catch(() => undefined);
    });
  }

  /** Deletes every CR of a deleting CRD, then drops the cleanup finalizer. */
  private async cleanupCrd(crd: Obj): Promise<void> {
    const types = this.registry
      .all()
      .filter((t) => t.crd && str(meta(t.crd.crd).name) === str(meta(crd).name));
    const first = types[0];
    if (first) {
      for (const o of [...this.store.listRaw(first.storeKey)]) {
        // CRs go with their CRD regardless of their finalizers (the real cleanup controller waits; the
        // dev cluster does not run the finalizers' controllers), so remove them outright.
        this.store.commit(first.storeKey, "DELETED", structuredClone(o));
      }
    }
    const current = this.store.get(
      "apiextensions.k8s.io/customresourcedefinitions",
      undefined,
      String(meta(crd).name),
    );
    if (!current) return;
    const cm = meta(current);
    cm.finalizers = (Array.isArray(cm.finalizers) ? cm.finalizers : []).filter(
      (f) => f !== "customresourcecleanup.apiextensions.k8s.io",
    );
    const crdType = this.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    if (!crdType) return;
    const evType = (cm.finalizers as unknown[]).length === 0 ? "DELETED" : "MODIFIED";
    const stored = this.store.commit(crdType.storeKey, evType, current);
    this.afterCommit(crdType, evType, stored);
  }

  /** Objects whose ownerReferences name `uid`. */
  private dependentsOf(uid: string): { t: ResourceType; o: Obj }[] {
    const out: { t: ResourceType; o: Obj }[] = [];
    for (const key of this.store.storeKeys()) {
      for (const o of this.store.listRaw(key)) {
        const refs = meta(o).ownerReferences;
        if (Array.isArray(refs) && refs.some((r) => isObj(r) && r.uid === uid)) {
          const t = this.registry.byStoreKey(key);
          if (t) out.push({ t, o });
        }
      }
    }
    return out;
  }

  /** Drops a finalizer the controllers own; the object goes when it was the last one. */
  private dropFinalizer(ref: OwnerRef, finalizer: string): void {
    const cur = this.store.get(ref.storeKey, ref.ns, ref.name);
    if (!cur || meta(cur).uid !== ref.uid) return;
    const m = meta(cur);
    const rest = (Array.isArray(m.finalizers) ? m.finalizers : []).filter((f) => f !== finalizer);
    m.finalizers = rest;
    if (rest.length === 0) delete m.finalizers;
    const evType = rest.length === 0 && m.deletionTimestamp ? "DELETED" : "MODIFIED";
    const stored = this.store.commit(ref.storeKey, evType, cur);
    const t = this.registry.byStoreKey(ref.storeKey);
    if (t) this.afterCommit(t, evType, stored);
  }

  /** Orphan propagation: dependents lose the ownerReference, then the owner goes. */
  private orphanDependents(ref: OwnerRef): void {
    for (const { t, o } of this.dependentsOf(ref.uid)) {
      const m = meta(o);
      const copy = structuredClone(o);
      const refs = (m.ownerReferences as unknown[]).filter((r) => !(isObj(r) && r.uid === ref.uid));
      if (refs.length === 0) delete meta(copy).ownerReferences;
      else meta(copy).ownerReferences = refs;
      this.store.commit(t.storeKey, "MODIFIED", copy);
    }
    this.dropFinalizer(ref, "orphan");
  }

  /** Foreground propagation: dependents are deleted first; the owner goes when none is left. */
  private async reconcileForeground(): Promise<void> {
    for (const [uid, ref] of [...this.foreground]) {
      const deps = this.dependentsOf(uid);
      if (deps.length === 0) {
        this.foreground.delete(uid);
        this.dropFinalizer(ref, "foregroundDeletion");
        continue;
      }
      for (const { t, o } of deps) {
        if (meta(o).deletionTimestamp) continue;
        try {
          await this.api().delete(this.info(t, str(meta(o).namespace), String(meta(o).name)), {
            propagationPolicy: "Background",
          });
        } catch {
          // raced
        }
      }
    }
  }

  /** Background garbage collection: dependents whose owners are all gone are deleted. */
  private async collectDependents(ownerUid: string): Promise<void> {
    const liveUids = new Set<string>();
    const candidates: { t: ResourceType; o: Obj }[] = [];
    for (const key of this.store.storeKeys()) {
      for (const o of this.store.listRaw(key)) {
        const m = meta(o);
        liveUids.add(String(m.uid));
        const refs = Array.isArray(m.ownerReferences) ? m.ownerReferences : [];
        if (refs.some((r) => isObj(r) && r.uid === ownerUid)) {
          const t = this.registry.byStoreKey(key);
          if (t) candidates.push({ t, o });
        }
      }
    }
    for (const { t, o } of candidates) {
      const m = meta(o);
      const refs = (m.ownerReferences as unknown[]).filter(isObj);
      if (refs.some((r) => liveUids.has(String(r.uid)))) continue;
      try {
        await this.api().delete(this.info(t, str(m.namespace), String(m.name)), {
          propagationPolicy: "Background",
        });
      } catch {
        // already gone
      }
    }
  }

  /** Terminating namespaces: delete their content, then the namespace once nothing is left. */
  private async reconcileNamespaces(): Promise<void> {
    const nsType = this.registry.get("", "v1", "namespaces");
    if (!nsType) return;
    for (const ns of [...this.pendingNs]) {
      const nsObj = this.store.get("/namespaces", undefined, ns);
      if (!nsObj || !meta(nsObj).deletionTimestamp) {
        this.pendingNs.delete(ns);
        continue;
      }
      let remaining = 0;
      for (const key of this.store.storeKeys()) {
        if (key === "/namespaces") continue;
        const t = this.registry.byStoreKey(key);
        if (!t || !t.namespaced) continue;
        for (const o of [...this.store.listRaw(key, ns)]) {
          remaining++;
          if (meta(o).deletionTimestamp) continue;
          try {
            await this.api().delete(this.info(t, ns, String(meta(o).name)), {
              propagationPolicy: "Background",
            });
          } catch {
            // raced with another delete
          }
        }
      }
      if (remaining === 0 || this.countIn(ns) === 0) {
        const cur = this.store.get("/namespaces", undefined, ns);
        if (!cur) {
          this.pendingNs.delete(ns);
          continue;
        }
        // the namespace controller owns the "kubernetes" finalizer; others hold the namespace until they
        // hand off through the finalize subresource
        const spec = isObj(cur.spec) ? cur.spec : {};
        const rest = (Array.isArray(spec.finalizers) ? spec.finalizers : []).filter(
          (f) => f !== "kubernetes",
        );
        cur.spec = { ...spec, finalizers: rest };
        if (rest.length === 0) {
          this.pendingNs.delete(ns);
          this.store.commit("/namespaces", "DELETED", cur);
        } else if (Array.isArray(spec.finalizers) && spec.finalizers.includes("kubernetes")) {
          this.store.commit("/namespaces", "MODIFIED", cur);
        }
      }
    }
  }

  private countIn(ns: string): number {
    let n = 0;
    for (const key of this.store.storeKeys()) {
      if (key === "/namespaces") continue;
      n += this.store.listRaw(key, ns).length;
    }
    return n;
  }
}
