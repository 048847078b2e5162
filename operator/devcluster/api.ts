// The verbs over the generic store: get, list, create, update, patch (merge, JSON, strategic, apply),
// delete (finalizers), deletecollection; with the status-subresource split, generation, resourceVersion
// preconditions, namespace checks, schema admission for custom resources, managedFields and webhooks.
// Semantics follow https://kubernetes.io/docs/reference/using-api/api-concepts/ and the API conventions
// (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md).
import { parse as parseYaml } from "yaml";
import { builtinCauses } from "./builtins.js";
import { admitCustomResource, UNKNOWN_FIELD_REASON } from "./crd-schema.js";
import {
  applyIntent,
  builtinListKeys,
  recordUpdate,
  schemaListKeys,
  type ListKeys,
} from "./managed-fields.js";
import { jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";
import { gvString, type ResourceType } from "./registry.js";
import type { FieldSelector, LabelSelector } from "./selectors.js";
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  forbidden,
  internalError,
  invalid,
  notFound,
  successStatus,
  unsupportedMediaType,
  type StatusCause,
} from "./status.js";
import type { Store } from "./store.js";
import {
  clone,
  isObj,
  jsonEqual,
  labelValueError,
  qualifiedNameError,
  MAX_BODY_DEPTH,
  meta,
  nestedDeeperThan,
  nowTime,
  randomSuffix,
  str,
  uid,
  validateName,
  type Obj,
} from "./util.js";
import { yamlNestingBound } from "./yaml-depth.js";

export type FieldValidation = "Strict" | "Warn" | "Ignore";
export type Operation = "CREATE" | "UPDATE" | "DELETE";

export interface RequestInfo {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  dryRun: boolean;
  fieldValidation: FieldValidation;
  fieldManager: string;
  userAgent?: string;
  username: string;
  /** Warnings to return in `Warning` headers. */
  warnings: string[];
}

/** Admission hooks (webhooks) the write path calls; both may throw an ApiError. */
export interface Admission {
  mutate(info: RequestInfo, op: Operation, obj: Obj, old: Obj | undefined): Promise<Obj>;
  validate(info: RequestInfo, op: Operation, obj: Obj, old: Obj | undefined): Promise<void>;
}

/** Hooks for controllers (namespace lifecycle, CRDs, GC) to react to writes. */
export interface WriteHooks {
  /** Before a CRD is stored: validates and fills status. */
  prepareCrd?(obj: Obj, old: Obj | undefined): void;
  afterCommit?(type: ResourceType, evType: "ADDED" | "MODIFIED" | "DELETED", obj: Obj): void;
}

const SMP = "application/strategic-merge-patch+json";
const MERGE = "application/merge-patch+json";
const JSONP = "application/json-patch+json";
const APPLY = "application/apply-patch+yaml";

function apiVersionOf(t: ResourceType): string {
  return gvString(t.group, t.version);
}

function listKeysFor(t: ResourceType): ListKeys {
  return t.crd ? schemaListKeys(t.crd.schema) : builtinListKeys;
}

export class Api {
  constructor(
    private readonly store: Store,
    private readonly admission: Admission,
    private readonly hooks: WriteHooks = {},
  ) {}

  // --- reads ------------------------------------------------------------------------------------

  /** The object as this type shows it (events.k8s.io view, apiVersion/kind set). */
  view(t: ResourceType, o: Obj): Obj {
    const out = t.fromStored ? t.fromStored(o) : o;
    out.apiVersion = apiVersionOf(t);
    out.kind = t.kind;
    return out;
  }

  private stored(t: ResourceType, ns: string | undefined, name: string): Obj | undefined {
    return this.store.get(t.storeKey, t.namespaced ? ns : undefined, name);
  }

  get(info: RequestInfo): Obj {
    const { type: t, name = "" } = info;
    const o = this.stored(t, info.namespace, name);
    if (!o) throw notFound(t.group, t.resource, name);
    return this.view(t, o);
  }

  list(
    info: RequestInfo,
    opts: { label?: LabelSelector; field?: FieldSelector; limit?: number; continueToken?: string },
  ): { items: Obj[]; rv: string; continueToken?: string; remaining?: number } {
    const t = info.type;
    const rv = String(this.store.currentRv());
    let startAfter: string | undefined;
    if (opts.continueToken) {
      try {
        const tok = JSON.parse(Buffer.from(opts.continueToken, "base64url").toString("utf8")) as {
          k: string;
        };
        startAfter = tok.k;
      } catch {
        throw badRequest(`invalid continue token`);
      }
    }
    const ns = t.namespaced ? info.namespace : undefined;
    const items: Obj[] = [];
    let last: string | undefined;
    let remaining = 0;
    for (const raw of this.store.listRaw(t.storeKey, ns)) {
      const m = meta(raw);
      const key = `${String(m.namespace ?? "")}/${String(m.name)}`;
      if (startAfter !== undefined && key <= startAfter) continue;
      if (opts.label && !opts.label((isObj(m.labels) ? m.labels : {}) as Record<string, string>)) continue;
      // stored objects already carry their own apiVersion/kind: no copy unless converted
      const v = t.fromStored ? this.view(t, clone(raw)) : raw;
      if (opts.field && !opts.field(v)) continue;
      if (opts.limit !== undefined && opts.limit > 0 && items.length >= opts.limit) {
        remaining++;
        continue;
      }
      items.push(v);
      last = key;
    }
    const out: { items: Obj[]; rv: string; continueToken?: string; remaining?: number } = { items, rv };
    if (remaining > 0 && last !== undefined) {
      out.continueToken = Buffer.from(JSON.stringify({ k: last, rv })).toString("base64url");
      out.remaining = remaining;
    }
    return out;
  }

  // --- helpers for writes ------------------------------------------------------------------------

  private checkNamespace(info: RequestInfo, creating: boolean): void {
    const t = info.type;
    if (!t.namespaced) return;
    const ns = info.namespace ?? "";
    const nsObj = this.store.get("/namespaces", undefined, ns);
    if (!nsObj) throw notFound("", "namespaces", ns);
    if (creating && isObj(nsObj.metadata) && nsObj.metadata.deletionTimestamp) {
      throw forbidden(
        `${t.resource}${t.group ? `.${t.group}` : ""} "${info.name ?? ""}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        {
          name: info.name ?? "",
          group: t.group,
          kind: t.resource,
          causes: [
            {
              reason: "NamespaceTerminating",
              message: `namespace ${ns} is being terminated`,
              field: "metadata.namespace",
            },
          ],
        },
      );
    }
  }

  /** Checks apiVersion/kind, namespace and name of a body against the request. */
  private checkIdentity(info: RequestInfo, body: Obj): void {
    const t = info.type;
    const m = meta(body);
    if (
      body.apiVersion !== undefined &&
      body.apiVersion !== apiVersionOf(t) &&
      !(t.toStored && body.apiVersion === "v1")
    ) {
      throw badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersionOf(t)})`,
      );
    }
    if (body.kind !== undefined && body.kind !== t.kind) {
      throw badRequest(
        `the kind in the data (${String(body.kind)}) does not match the expected kind (${t.kind})`,
      );
    }
    if (t.namespaced) {
      if (m.namespace !== undefined && m.namespace !== "" && m.namespace !== info.namespace)
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      m.namespace = info.namespace;
    } else delete m.namespace;
  }

  /** Schema admission for CRs (prune/default/validate/CEL) and basic checks for built-ins. */
  private admitSchema(info: RequestInfo, obj: Obj, old: Obj | undefined, isApply: boolean): Obj {
    const t = info.type;
    const name = str(meta(obj).name) ?? "";
    let causes: StatusCause[] = [];
    let result = obj;
    if (t.crd) {
      const opts: Parameters<typeof admitCustomResource>[0] = {
        schema: t.crd.schema,
        object: obj,
        fieldValidation: info.fieldValidation,
      };
      if (old) opts.oldObject = old;
      const r = admitCustomResource(opts);
      result = r.object;
      // keep metadata as the server manages it (the engine may prune it to known ObjectMeta fields)
      result.metadata = { ...(isObj(r.object.metadata) ? r.object.metadata : {}), ...meta(obj) };
      info.warnings.push(...r.warnings);
      const unknown = r.causes.filter((c) => c.reason === UNKNOWN_FIELD_REASON);
      causes = r.causes.filter((c) => c.reason !== UNKNOWN_FIELD_REASON);
      if (unknown.length > 0 && info.fieldValidation === "Strict") {
        if (isApply) {
          throw internalError(
            `failed to create typed patch object (${info.namespace ? `${info.namespace}/` : ""}${name}; ${apiVersionOf(t)}, Kind=${t.kind}): ${unknown.map((u) => `.${u.field}: field not declared in schema`).join(", ")}`,
          );
        }
        throw badRequest(
          `${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}: strict decoding error: ${unknown.map((u) => u.message).join(", ")}`,
          unknown.map((u) => ({ reason: "FieldValueInvalid", message: u.message, field: u.field })),
        );
      }
    } else {
      try {
        causes = builtinCauses(t, obj);
      } catch (err) {
        const mt = (err as { microtime?: string }).microtime;
        if (mt) throw badRequest(mt);
        throw err;
      }
    }
    const m = meta(result);
    const nameErr = validateName(name, t.resource === "namespaces");
    if (nameErr && name !== "")
      causes.unshift({
        reason: "FieldValueInvalid",
        message: `Invalid value: "${name}": ${nameErr}`,
        field: "metadata.name",
      });
    if (isObj(m.labels)) {
      for (const [k, v] of Object.entries(m.labels)) {
        const ke = qualifiedNameError(k);
        if (ke)
          causes.push({
            reason: "FieldValueInvalid",
            message: `Invalid value: ${JSON.stringify(k)}: ${ke}`,
            field: "metadata.labels",
          });
        const ve = typeof v === "string" ? labelValueError(v) : "must be a string";
        if (ve)
          causes.push({
            reason: "FieldValueInvalid",
            message: `Invalid value: ${JSON.stringify(v)}: ${ve}`,
            field: `metadata.labels`,
          });
      }
    }
    if (isObj(m.annotations)) {
      let size = 0;
      for (const [k, v] of Object.entries(m.annotations)) {
        const ke = qualifiedNameError(k.toLowerCase());
        if (ke)
          causes.push({
            reason: "FieldValueInvalid",
            message: `Invalid value: ${JSON.stringify(k)}: ${ke}`,
            field: "metadata.annotations",
          });
        size += k.length + (typeof v === "string" ? v.length : 0);
      }
      if (size > 256 * 1024)
        causes.push({
          reason: "FieldValueTooLong",
          message: "Too long: must have at most 262144 bytes",
          field: "metadata.annotations",
        });
    }
    if (Array.isArray(m.finalizers)) {
      for (const f of m.finalizers) {
        if (
          typeof f === "string" &&
          !f.includes("/") &&
          f !== "kubernetes" &&
          f !== "orphan" &&
          f !== "foregroundDeletion"
        )
          info.warnings.push(
            `metadata.finalizers: "${f}": prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers`,
          );
      }
    }
    if (causes.length > 0) throw invalid(t.group, t.kind, name, causes);
    return result;
  }

  private manager(info: RequestInfo): string {
    return info.fieldManager;
  }

  /** Commits unless dry-run; returns the object as this type shows it. */
  private commit(info: RequestInfo, evType: "ADDED" | "MODIFIED" | "DELETED", obj: Obj): Obj {
    const t = info.type;
    const toStore = t.toStored ? t.toStored(obj) : obj;
    if (info.dryRun) {
      if (evType !== "DELETED" && !meta(toStore).resourceVersion)
        meta(toStore).resourceVersion = String(this.store.currentRv());
      return this.view(t, toStore);
    }
    const stored = this.store.commit(t.storeKey, evType, toStore);
    this.hooks.afterCommit?.(t, evType, stored);
    return this.view(t, stored);
  }

  // --- create ------------------------------------------------------------------------------------

  async create(info: RequestInfo, body: unknown): Promise<Obj> {
    const t = info.type;
    if (!isObj(body)) throw badRequest("the body of the request must be a JSON object");
    let obj = clone(body);
    this.checkIdentity(info, obj);
    const m = meta(obj);
    if (!str(m.name)) {
      if (str(m.generateName)) m.name = `${String(m.generateName)}${randomSuffix()}`;
      else
        throw invalid(t.group, t.kind, "", [
          {
            reason: "FieldValueRequired",
            message: "Required value: name or generateName is required",
            field: "metadata.name",
          },
        ]);
    }
    info.name = String(m.name);
    this.checkNamespace(info, true);
    if (Array.isArray(m.managedFields) === false) delete m.managedFields;
    const explicitMf = Array.isArray(m.managedFields);
    obj = await this.admission.mutate(info, "CREATE", obj, undefined);
    obj = this.admitSchema(info, obj, undefined, false);
    this.prepareNew(info, obj);
    if (this.stored(t, info.namespace, info.name)) throw alreadyExists(t.group, t.resource, info.name);
    recordUpdate(undefined, obj, this.manager(info), apiVersionOf(t), listKeysFor(t), undefined, explicitMf);
    await this.admission.validate(info, "CREATE", obj, undefined);
    // webhooks may have taken a while: another request may have created it meanwhile
    if (this.stored(t, info.namespace, info.name)) throw alreadyExists(t.group, t.resource, info.name);
    return this.commit(info, "ADDED", obj);
  }

  /** Server-set metadata on create, the status drop, and kind-specific defaults. */
  private prepareNew(info: RequestInfo, obj: Obj): void {
    const t = info.type;
    const m = meta(obj);
    m.uid = uid();
    m.creationTimestamp = nowTime();
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.selfLink;
    if (t.tracksGeneration) m.generation = 1;
    else delete m.generation;
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    if (t.subresources.includes("status") && t.resource !== "namespaces") delete obj.status;
    if (t.resource === "namespaces" && !t.group) {
      m.labels = { ...(isObj(m.labels) ? m.labels : {}), "kubernetes.io/metadata.name": String(m.name) };
      obj.spec = { finalizers: ["kubernetes"] };
      obj.status = { phase: "Active" };
    }
    if (t.resource === "secrets" && !t.group) normalizeSecret(obj);
    if (t.resource === "customresourcedefinitions") this.hooks.prepareCrd?.(obj, undefined);
  }

  // --- update ------------------------------------------------------------------------------------

  /**
   * PUT (and the second half of every patch). `precondition` is the RV the client sent (object RV or
   * the one a patch produced); a mismatch with the stored one is 409.
   */
  async update(
    info: RequestInfo,
    body: unknown,
    opts: { isPatch?: boolean; isApply?: boolean; clientRv?: boolean } = {},
  ): Promise<Obj> {
    const t = info.type;
    const name = info.name ?? "";
    if (!isObj(body)) throw badRequest("the body of the request must be a JSON object");
    let obj = clone(body);
    this.checkIdentity(info, obj);
    const m = meta(obj);
    if (m.name !== undefined && m.name !== name)
      throw badRequest(
        `the name of the object (${String(m.name)}) does not match the name on the URL (${name})`,
      );
    m.name = name;
    this.checkNamespace(info, false);
    const old = this.stored(t, info.namespace, name);
    if (!old) throw notFound(t.group, t.resource, name);
    const om = meta(old);
    const sentRv = str(m.resourceVersion);
    if (sentRv === undefined || sentRv === "") {
      if (!opts.isPatch && !t.allowUnconditionalUpdate && !info.subresource)
        throw invalid(t.group, t.kind, name, [
          {
            reason: "FieldValueInvalid",
            message: "Invalid value: 0x0: must be specified for an update",
            field: "metadata.resourceVersion",
          },
        ]);
    } else if (sentRv !== om.resourceVersion) {
      throw conflict(t.group, t.resource, name);
    }
    const explicitMf = Array.isArray(m.managedFields) && !jsonEqual(m.managedFields, om.managedFields);
    if (!Array.isArray(m.managedFields)) m.managedFields = om.managedFields;

    if (info.subresource === "status") {
      // /status writes keep everything but status (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource)
      const next = clone(old);
      if (obj.status === undefined) delete next.status;
      else next.status = obj.status;
      meta(next).managedFields = m.managedFields;
      obj = next;
    } else {
      // Identity and server-managed fields are immutable through updates.
      for (const k of [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
      ]) {
        if (om[k] === undefined) delete m[k];
        else m[k] = om[k];
      }
      if (t.subresources.includes("status") && t.resource !== "namespaces") {
        if (old.status === undefined) delete obj.status;
        else obj.status = old.status;
      }
      if (t.resource === "namespaces" && !t.group) {
        obj.spec = old.spec;
        obj.status = old.status;
        m.labels = { ...(isObj(m.labels) ? m.labels : {}), "kubernetes.io/metadata.name": name };
      }
      if (t.resource === "secrets" && !t.group) normalizeSecret(obj);
      if (om.deletionTimestamp) {
        const oldF = Array.isArray(om.finalizers) ? om.finalizers : [];
        const newF = Array.isArray(m.finalizers) ? m.finalizers : [];
        if (newF.some((f) => !oldF.includes(f)))
          throw invalid(t.group, t.kind, name, [
            {
              reason: "FieldValueForbidden",
              message: "Forbidden: no new finalizers can be added if the object is being deleted",
              field: "metadata.finalizers",
            },
          ]);
      }
    }
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    obj = await this.admission.mutate(info, "UPDATE", obj, old);
    obj = this.admitSchema(info, obj, old, opts.isApply === true);
    if (t.resource === "customresourcedefinitions" && info.subresource !== "status")
      this.hooks.prepareCrd?.(obj, old);
    // generation: bumped on any change outside metadata (and status, when it is a subresource)
    if (t.tracksGeneration) {
      const strip = (o: Obj) => {
        const c: Obj = { ...o };
        delete c.metadata;
        if (t.subresources.includes("status")) delete c.status;
        return c;
      };
      meta(obj).generation = (Number(om.generation) || 1) + (jsonEqual(strip(obj), strip(old)) ? 0 : 1);
    }
    if (!opts.isApply)
      recordUpdate(
        old,
        obj,
        this.manager(info),
        apiVersionOf(t),
        listKeysFor(t),
        info.subresource,
        explicitMf,
      );
    await this.admission.validate(info, "UPDATE", obj, old);
    // The read-check-write above spans awaits (webhooks): if the object moved meanwhile, this write is
    // based on a stale read. Patches without a client precondition retry from the new state (as the
    // apiserver's GuaranteedUpdate does); everything else reports the conflict.
    const latest = this.stored(t, info.namespace, name);
    if (!latest) throw notFound(t.group, t.resource, name);
    if (meta(latest).resourceVersion !== om.resourceVersion) {
      if (opts.isPatch && !opts.clientRv) throw new StaleRead();
      throw conflict(t.group, t.resource, name);
    }
    meta(obj).resourceVersion = om.resourceVersion;
    if (jsonEqual(obj, old)) return this.view(t, old); // no-op writes keep the RV (and emit no event)
    const nm = meta(obj);
    if (nm.deletionTimestamp && (!Array.isArray(nm.finalizers) || nm.finalizers.length === 0)) {
      // the last finalizer went: the object is gone now
      return this.commit(info, "DELETED", obj);
    }
    return this.commit(info, "MODIFIED", obj);
  }

  // --- patch -------------------------------------------------------------------------------------

  async patch(
    info: RequestInfo,
    contentType: string,
    raw: string,
    force: boolean | undefined,
  ): Promise<{ object: Obj; created: boolean }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.patchOnce(info, contentType, raw, force);
      } catch (err) {
        if (!(err instanceof StaleRead)) throw err;
        if (attempt >= 4) throw conflict(info.type.group, info.type.resource, info.name ?? "");
      }
    }
  }

  private async patchOnce(
    info: RequestInfo,
    contentType: string,
    raw: string,
    force: boolean | undefined,
  ): Promise<{ object: Obj; created: boolean }> {
    const t = info.type;
    const name = info.name ?? "";
    const ct = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
    const supported = t.builtin ? [JSONP, MERGE, SMP, APPLY] : [JSONP, MERGE, APPLY];
    if (!supported.includes(ct)) {
      throw unsupportedMediaType(
        `the body of the request was in an unknown format - accepted media types include: ${supported.join(", ")}`,
      );
    }
    if (ct !== APPLY && force !== undefined)
      throw invalid("meta.k8s.io", "PatchOptions", "", [
        {
          reason: "FieldValueForbidden",
          message: "Forbidden: may not be specified for non-apply patch",
          field: "force",
        },
      ]);
    if (ct === APPLY && yamlNestingBound(raw) > MAX_BODY_DEPTH)
      throw badRequest(`error decoding patch: exceeded max depth of ${MAX_BODY_DEPTH}`);
    let patchBody: unknown;
    try {
      patchBody = ct === APPLY ? parseYaml(raw) : JSON.parse(raw);
    } catch (err) {
      throw badRequest(`error decoding patch: ${(err as Error).message}`);
    }
    if (nestedDeeperThan(patchBody, MAX_BODY_DEPTH))
      throw badRequest(`error decoding patch: exceeded max depth of ${MAX_BODY_DEPTH}`);
    if (ct === APPLY) return this.apply(info, patchBody, force === true);
    const current = this.stored(t, info.namespace, name);
    if (!current) throw notFound(t.group, t.resource, name);
    const view = this.view(t, current);
    let patched: unknown;
    if (ct === JSONP) patched = jsonPatch(view, patchBody);
    else if (ct === MERGE) {
      if (!isObj(patchBody)) throw badRequest("the merge patch must be a JSON object");
      patched = mergePatch(view, patchBody);
    } else {
      if (!isObj(patchBody)) throw badRequest("the strategic merge patch must be a JSON object");
      patched = strategicMergePatch(view, patchBody);
    }
    if (!isObj(patched)) throw badRequest("the patched object must be a JSON object");
    const pm = meta(patched);
    const clientRv = pm.resourceVersion !== undefined && pm.resourceVersion !== null;
    if (!clientRv || pm.resourceVersion === meta(current).resourceVersion) {
      // the RV in the patched object is the one we read unless the patch itself set one
      const setByPatch =
        (ct === JSONP &&
          Array.isArray(patchBody) &&
          patchBody.some((op) => isObj(op) && op.path === "/metadata/resourceVersion")) ||
        (ct !== JSONP &&
          isObj(patchBody) &&
          isObj(patchBody.metadata) &&
          patchBody.metadata.resourceVersion !== undefined);
      pm.resourceVersion = meta(current).resourceVersion;
      const object = await this.update(info, patched, { isPatch: true, clientRv: setByPatch });
      return { object, created: false };
    }
    const object = await this.update(info, patched, { isPatch: true, clientRv: true });
    return { object, created: false };
  }

  /** Server-side apply (https://kubernetes.io/docs/reference/using-api/server-side-apply/). */
  private async apply(
    info: RequestInfo,
    body: unknown,
    force: boolean,
  ): Promise<{ object: Obj; created: boolean }> {
    const t = info.type;
    const name = info.name ?? "";
    if (!info.fieldManager || info.fieldManager === "__unset__")
      throw new ApiError(
        422,
        "Invalid",
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        {
          group: "meta.k8s.io",
          kind: "PatchOptions",
          causes: [
            {
              reason: "FieldValueRequired",
              message: "Required value: is required for apply patch",
              field: "fieldManager",
            },
          ],
        },
      );
    if (!isObj(body)) throw badRequest("the apply body must be an object");
    const intent = clone(body);
    const im = meta(intent);
    if (im.managedFields !== undefined) throw badRequest("metadata.managedFields must be nil");
    if (intent.apiVersion === undefined || intent.kind === undefined)
      throw badRequest("invalid object type: apiVersion and kind must be set");
    if (im.name !== undefined && im.name !== name)
      throw badRequest(
        `the name of the object (${String(im.name)}) does not match the name on the URL (${name})`,
      );
    im.name = name;
    this.checkIdentity(info, intent);
    const current = this.stored(t, info.namespace, name);
    const live = current ? this.view(t, current) : undefined;
    const skipStatus = t.subresources.includes("status") && info.subresource !== "status";
    const applyOpts: Parameters<typeof applyIntent>[0] = {
      live,
      intent,
      manager: info.fieldManager,
      force,
      apiVersion: apiVersionOf(t),
      listKeys: listKeysFor(t),
      skipStatus,
    };
    if (info.subresource) applyOpts.subresource = info.subresource;
    const merged = applyIntent(applyOpts);
    if (!current) {
      // create through the normal path, keeping the apply's managedFields
      const mf = meta(merged).managedFields;
      const createInfo = { ...info, fieldManager: info.fieldManager };
      const created = await this.createApplied(createInfo, merged, mf);
      return { object: created, created: true };
    }
    meta(merged).resourceVersion = meta(current).resourceVersion;
    const object = await this.update(info, merged, { isPatch: true, isApply: true });
    return { object, created: false };
  }

  private async createApplied(info: RequestInfo, obj: Obj, managedFields: unknown): Promise<Obj> {
    const t = info.type;
    this.checkNamespace(info, true);
    let o = await this.admission.mutate(info, "CREATE", obj, undefined);
    o = this.admitSchema(info, o, undefined, true);
    this.prepareNew(info, o);
    if (managedFields !== undefined) meta(o).managedFields = managedFields;
    if (this.stored(t, info.namespace, info.name ?? ""))
      throw alreadyExists(t.group, t.resource, info.name ?? "");
    await this.admission.validate(info, "CREATE", o, undefined);
    if (this.stored(t, info.namespace, info.name ?? ""))
      throw alreadyExists(t.group, t.resource, info.name ?? "");
    return this.commit(info, "ADDED", o);
  }

  // --- delete ------------------------------------------------------------------------------------

  async delete(info: RequestInfo, options: unknown): Promise<Obj> {
    const t = info.type;
    const name = info.name ?? "";
    const current = this.stored(t, info.namespace, name);
    if (!current) throw notFound(t.group, t.resource, name);
    const cm = meta(current);
    const opts = isObj(options) ? options : {};
    const pre = isObj(opts.preconditions) ? opts.preconditions : {};
    if (pre.uid !== undefined && pre.uid !== cm.uid)
      throw conflict(
        t.group,
        t.resource,
        name,
        `Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${String(cm.uid)}`,
      );
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== cm.resourceVersion)
      throw conflict(
        t.group,
        t.resource,
        name,
        `Precondition failed: ResourceVersion in precondition: ${String(pre.resourceVersion)}, ResourceVersion in object meta: ${String(cm.resourceVersion)}`,
      );
    await this.admission.validate(info, "DELETE", current, current);
    const finalizers = Array.isArray(cm.finalizers) ? [...cm.finalizers] : [];
    if (opts.propagationPolicy === "Foreground" && !finalizers.includes("foregroundDeletion"))
      finalizers.push("foregroundDeletion");
    if (opts.propagationPolicy === "Orphan" && !finalizers.includes("orphan")) finalizers.push("orphan");
    if (t.resource === "namespaces" && !t.group) {
      if (cm.deletionTimestamp) return this.view(t, current);
      cm.deletionTimestamp = nowTime();
      cm.deletionGracePeriodSeconds = 0;
      current.status = { ...(isObj(current.status) ? current.status : {}), phase: "Terminating" };
      return this.commit(info, "MODIFIED", current);
    }
    if (
      t.resource === "customresourcedefinitions" &&
      !finalizers.includes("customresourcecleanup.apiextensions.k8s.io")
    )
      finalizers.push("customresourcecleanup.apiextensions.k8s.io");
    if (finalizers.length > 0) {
      if (cm.deletionTimestamp) return this.view(t, current);
      cm.finalizers = finalizers;
      cm.deletionTimestamp = nowTime();
      cm.deletionGracePeriodSeconds = 0;
      return this.commit(info, "MODIFIED", current);
    }
    const gone = this.commit(info, "DELETED", current);
    return gone;
  }

  async deleteCollection(
    info: RequestInfo,
    opts: { label?: LabelSelector; field?: FieldSelector },
    options: unknown,
  ): Promise<Obj> {
    const t = info.type;
    const { items, rv } = this.list(info, opts);
    const out: Obj[] = [];
    for (const it of items) {
      const m = meta(it);
      const sub: RequestInfo = { ...info, name: String(m.name) };
      if (t.namespaced) sub.namespace = String(m.namespace);
      try {
        out.push(await this.delete(sub, options));
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
    return { kind: t.listKind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: rv }, items: out };
  }

  /** PUT namespaces/<name>/finalize: replaces spec.finalizers (the namespace controller's hand-off). */
  finalizeNamespace(info: RequestInfo, body: unknown): Obj {
    const t = info.type;
    const name = info.name ?? "";
    const cur = this.stored(t, undefined, name);
    if (!cur) throw notFound(t.group, t.resource, name);
    const spec = isObj(body) && isObj(body.spec) ? body.spec : {};
    cur.spec = {
      ...(isObj(cur.spec) ? cur.spec : {}),
      finalizers: Array.isArray(spec.finalizers) ? spec.finalizers : [],
    };
    return this.commit(info, "MODIFIED", cur);
  }

  deletedStatus(t: ResourceType, o: Obj): Obj {
    const m = meta(o);
    return successStatus({
      name: String(m.name),
      group: t.group,
      kind: t.resource,
      uid: String(m.uid),
    }) as unknown as Obj;
  }
}

/** Thrown when a write raced another one after its read; patches retry from the new state. */
class StaleRead extends Error {}

/** Secrets: `stringData` merges into `data` (base64) and is never stored. */
function normalizeSecret(obj: Obj): void {
  if (isObj(obj.stringData)) {
    const data = isObj(obj.data) ? obj.data : {};
    for (const [k, v] of Object.entries(obj.stringData)) data[k] = Buffer.from(String(v)).toString("base64");
    obj.data = data;
  }
  delete obj.stringData;
  if (obj.type === undefined) obj.type = "Opaque";
}
