// The built-in resource types the project needs, stored generically. Only the behaviour that clients
// notice is modelled: scope, verbs, subresources, field selectors, generation tracking, and the
// events.k8s.io/v1 view of core events (one store, https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/).
import { ALL_VERBS, type Registry, type ResourceType } from "./registry.js";
import { isObj, type Obj } from "./util.js";

function t(
  group: string,
  version: string,
  resource: string,
  kind: string,
  opts: Partial<ResourceType> = {},
): ResourceType {
  return {
    group,
    version,
    resource,
    kind,
    listKind: `${kind}List`,
    singular: kind.toLowerCase(),
    namespaced: true,
    shortNames: [],
    categories: [],
    verbs: ALL_VERBS,
    subresources: [],
    tracksGeneration: false,
    builtin: true,
    storeKey: `${group}/${resource}`,
    fieldLabels: [],
    allowUnconditionalUpdate: true,
    ...opts,
  };
}

const EVENT_FIELDS = [
  "involvedObject.kind",
  "involvedObject.namespace",
  "involvedObject.name",
  "involvedObject.uid",
  "involvedObject.apiVersion",
  "involvedObject.resourceVersion",
  "involvedObject.fieldPath",
  "reason",
  "reportingComponent",
  "source",
  "type",
];

// core field ↔ events.k8s.io field
const EVENT_RENAMES: [string, string][] = [
  ["involvedObject", "regarding"],
  ["message", "note"],
  ["reportingComponent", "reportingController"],
  ["source", "deprecatedSource"],
  ["firstTimestamp", "deprecatedFirstTimestamp"],
  ["lastTimestamp", "deprecatedLastTimestamp"],
  ["count", "deprecatedCount"],
];

/** A core/v1 Event as seen through events.k8s.io/v1. */
export function eventToV1(o: Obj): Obj {
  const out: Obj = { ...o, apiVersion: "events.k8s.io/v1", kind: "Event" };
  for (const [core, v1] of EVENT_RENAMES) {
    delete out[core];
    if (o[core] !== undefined) out[v1] = o[core];
  }
  return out;
}

/** An events.k8s.io/v1 Event stored as core/v1. */
export function eventFromV1(o: Obj): Obj {
  const out: Obj = { ...o, apiVersion: "v1", kind: "Event" };
  for (const [core, v1] of EVENT_RENAMES) {
    delete out[v1];
    if (o[v1] !== undefined) out[core] = o[v1];
  }
  return out;
}

export function builtinTypes(): ResourceType[] {
  return [
    t("", "v1", "namespaces", "Namespace", {
      namespaced: false,
      shortNames: ["ns"],
      subresources: ["finalize", "status"],
      fieldLabels: ["status.phase"],
    }),
    t("", "v1", "pods", "Pod", {
      shortNames: ["po"],
      categories: ["all"],
      subresources: ["status"],
      fieldLabels: [
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
      ],
    }),
    t("", "v1", "services", "Service", {
      shortNames: ["svc"],
      categories: ["all"],
      subresources: ["status"],
    }),
    t("", "v1", "endpoints", "Endpoints", { shortNames: ["ep"], singular: "endpoints" }),
    t("", "v1", "configmaps", "ConfigMap", { shortNames: ["cm"] }),
    t("", "v1", "secrets", "Secret", { fieldLabels: ["type"] }),
    t("", "v1", "serviceaccounts", "ServiceAccount", { shortNames: ["sa"], subresources: ["token"] }),
    t("", "v1", "events", "Event", { shortNames: ["ev"], fieldLabels: EVENT_FIELDS, storeKey: "/events" }),
    t("events.k8s.io", "v1", "events", "Event", {
      shortNames: ["ev"],
      storeKey: "/events",
      fieldLabels: EVENT_FIELDS.map((f) => f.replace(/^involvedObject\./, "regarding.")),
      fromStored: eventToV1,
      toStored: eventFromV1,
    }),
    t("coordination.k8s.io", "v1", "leases", "Lease"),
    t("apps", "v1", "deployments", "Deployment", {
      shortNames: ["deploy"],
      categories: ["all"],
      subresources: ["scale", "status"],
      tracksGeneration: true,
    }),
    t("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", {
      namespaced: false,
      shortNames: ["crd", "crds"],
      categories: ["api-extensions"],
      subresources: ["status"],
      tracksGeneration: true,
    }),
    // What the Helm chart renders (issue 8): stored, not enforced.
    t("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", {
      shortNames: ["pdb"],
      subresources: ["status"],
      tracksGeneration: true,
    }),
    t("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", {
      shortNames: ["netpol"],
      tracksGeneration: true,
    }),
    t("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    t("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    t("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", { namespaced: false }),
    t("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", { namespaced: false }),
    t("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", {
      namespaced: false,
      categories: ["api-extensions"],
      tracksGeneration: true,
    }),
    t(
      "admissionregistration.k8s.io",
      "v1",
      "validatingwebhookconfigurations",
      "ValidatingWebhookConfiguration",
      {
        namespaced: false,
        categories: ["api-extensions"],
        tracksGeneration: true,
      },
    ),
    t("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", { namespaced: false, verbs: ["create"] }),
    t("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", {
      namespaced: false,
      verbs: ["create"],
    }),
    t("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", {
      namespaced: false,
      verbs: ["create"],
    }),
  ];
}

export function registerBuiltins(reg: Registry): void {
  for (const bt of builtinTypes()) reg.add(bt);
}

/** Validation hooks for built-in kinds: MicroTime fields, secrets' base64. Returns causes. */
export function builtinCauses(
  type: ResourceType,
  o: Obj,
): { field: string; reason: string; message: string }[] {
  const causes: { field: string; reason: string; message: string }[] = [];
  const micro = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;
  const checkMicro = (v: unknown, field: string) => {
    if (v === undefined || v === null) return;
    if (typeof v !== "string" || !micro.test(v)) {
      const frac = typeof v === "string" ? (/(\.\d*)?(Z|[+-]\d{2}:\d{2})$/.exec(v)?.[0] ?? v) : String(v);
      throw Object.assign(new Error("microtime"), {
        microtime: `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: parsing time "${String(v)}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${frac}" as ".000000" (field ${field})`,
      });
    }
  };
  if (type.resource === "leases") {
    const spec = isObj(o.spec) ? o.spec : {};
    checkMicro(spec.acquireTime, "spec.acquireTime");
    checkMicro(spec.renewTime, "spec.renewTime");
    if (
      spec.leaseDurationSeconds !== undefined &&
      !(typeof spec.leaseDurationSeconds === "number" && spec.leaseDurationSeconds > 0)
    )
      causes.push({
        field: "spec.leaseDurationSeconds",
        reason: "FieldValueInvalid",
        message: `Invalid value: ${JSON.stringify(spec.leaseDurationSeconds)}: must be greater than 0`,
      });
  }
  if (type.resource === "events") {
    checkMicro(o.eventTime, "eventTime");
    if (type.group === "events.k8s.io") {
      if (o.eventTime === undefined || o.eventTime === null)
        causes.push({ field: "eventTime", reason: "FieldValueRequired", message: "Required value" });
      for (const f of ["reportingController", "reportingInstance", "action", "reason"]) {
        if (typeof o[f] !== "string" || o[f] === "")
          causes.push({ field: f, reason: "FieldValueRequired", message: "Required value" });
      }
      if (o.type !== undefined && o.type !== "Normal" && o.type !== "Warning")
        causes.push({
          field: "type",
          reason: "FieldValueNotSupported",
          message: `Unsupported value: ${JSON.stringify(o.type)}: supported values: "Normal", "Warning"`,
        });
    }
  }
  if (type.resource === "secrets" && isObj(o.data)) {
    for (const [k, v] of Object.entries(o.data)) {
      if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0)
        causes.push({
          field: `data[${k}]`,
          reason: "FieldValueInvalid",
          message: "Invalid value: illegal base64 data",
        });
    }
  }
  return causes;
}
