// The /openapi/v3/apis/<group>/<version> document for CRDs, shaped as kubectl 1.32 reads it:
// - apply (client-side) looks for a PATCH operation whose `x-kubernetes-group-version-kind` (an object) is the
//   object's GVK and that takes a `fieldValidation` parameter; then it sends fieldValidation=Strict and skips
//   client-side validation. PATCH carries no requestBody, so kubectl picks merge patch for CRs.
// - explain finds `components.schemas` entries by their `x-kubernetes-group-version-kind` (an array) and
//   resolves `$ref`s inside the document, so ObjectMeta and what it references are included.
import { createHash } from "node:crypto";
import { deepClone, isPlainObject } from "./types.js";

const META = "io.k8s.apimachinery.pkg.apis.meta.v1";
const ref = (name: string): Record<string, unknown> => ({ $ref: `#/components/schemas/${name}` });

const API_VERSION_DESCRIPTION =
  "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION =
  "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESCRIPTION =
  "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION =
  "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/** `resilience.bulwark.dev` → `dev.bulwark.resilience` (the definition-name prefix Kubernetes uses for CRDs). */
export function reverseDomain(group: string): string {
  return group.split(".").reverse().join(".");
}

/** The components.schemas key of a kind: `dev.bulwark.resilience.v1alpha1.ResiliencePolicy`. */
export function definitionName(group: string, version: string, kind: string): string {
  return [group === "" ? "" : reverseDomain(group), version, kind].filter((s) => s !== "").join(".");
}

/** A content hash for the `?hash=` of the /openapi/v3 root (uppercase hex SHA-512, as the apiserver uses). */
export function openApiDocumentHash(doc: Record<string, unknown>): string {
  return createHash("sha512").update(JSON.stringify(doc)).digest("hex").toUpperCase();
}

interface Served {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  namespaced: boolean;
  schema: Record<string, unknown>;
  status: boolean;
  scale: boolean;
}

function servedKinds(group: string, version: string, crds: Record<string, unknown>[]): Served[] {
  const out: Served[] = [];
  for (const crd of crds) {
    const spec = isPlainObject(crd.spec) ? crd.spec : undefined;
    if (!spec || spec.group !== group) continue;
    const names = isPlainObject(spec.names) ? spec.names : {};
    const kind = typeof names.kind === "string" ? names.kind : "";
    const plural = typeof names.plural === "string" ? names.plural : "";
    if (!kind || !plural) continue;
    const versions = Array.isArray(spec.versions) ? spec.versions.filter(isPlainObject) : [];
    const v = versions.find((x) => x.name === version && x.served !== false);
    if (!v) continue;
    const schemaHolder = isPlainObject(v.schema) ? v.schema : {};
    const subresources = isPlainObject(v.subresources) ? v.subresources : {};
    out.push({
      group,
      version,
      kind,
      listKind: typeof names.listKind === "string" ? names.listKind : `${kind}List`,
      plural,
      namespaced: spec.scope !== "Cluster",
      schema: isPlainObject(schemaHolder.openAPIV3Schema)
        ? deepClone(schemaHolder.openAPIV3Schema)
        : { type: "object", "x-kubernetes-preserve-unknown-fields": true },
      status: isPlainObject(subresources.status),
      scale: isPlainObject(subresources.scale),
    });
  }
  return out;
}

function kindSchema(s: Served): Record<string, unknown> {
  const schema = s.schema;
  const props = isPlainObject(schema.properties) ? { ...schema.properties } : {};
  props.apiVersion = { type: "string", description: API_VERSION_DESCRIPTION };
  props.kind = { type: "string", description: KIND_DESCRIPTION };
  props.metadata = { allOf: [ref(`${META}.ObjectMeta`)], default: {}, description: METADATA_DESCRIPTION };
  return {
    ...schema,
    type: "object",
    properties: props,
    "x-kubernetes-group-version-kind": [{ group: s.group, kind: s.kind, version: s.version }],
  };
}

function listSchema(s: Served): Record<string, unknown> {
  const item = definitionName(s.group, s.version, s.kind);
  return {
    description: `${s.listKind} is a list of ${s.kind}`,
    type: "object",
    required: ["items"],
    properties: {
      apiVersion: { type: "string", description: API_VERSION_DESCRIPTION },
      items: {
        description: `List of ${s.plural}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md`,
        type: "array",
        items: ref(item),
      },
      kind: { type: "string", description: KIND_DESCRIPTION },
      metadata: { allOf: [ref(`${META}.ListMeta`)], default: {}, description: LIST_METADATA_DESCRIPTION },
    },
    "x-kubernetes-group-version-kind": [{ group: s.group, kind: s.listKind, version: s.version }],
  };
}

const queryParam = (name: string, description: string, type = "string"): Record<string, unknown> => ({
  name,
  in: "query",
  description,
  schema: { type, uniqueItems: true },
});

const P = {
  dryRun: queryParam("dryRun", "When present, indicates that modifications should not be persisted."),
  fieldManager: queryParam(
    "fieldManager",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
  ),
  fieldValidation: queryParam(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
  ),
  force: queryParam("force", 'Force is going to "force" Apply requests.', "boolean"),
  pretty: queryParam("pretty", "If 'true', then the output is pretty printed."),
  labelSelector: queryParam(
    "labelSelector",
    "A selector to restrict the list of returned objects by their labels.",
  ),
  fieldSelector: queryParam(
    "fieldSelector",
    "A selector to restrict the list of returned objects by their fields.",
  ),
  limit: queryParam("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
  continue: queryParam(
    "continue",
    "The continue option should be set when retrieving more results from the server.",
  ),
  resourceVersion: queryParam(
    "resourceVersion",
    "resourceVersion sets a constraint on what resource versions a request may be served from.",
  ),
  watch: queryParam("watch", "Watch for changes to the described resources.", "boolean"),
  timeoutSeconds: queryParam("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
  name: {
    name: "name",
    in: "path",
    description: "name of the resource",
    required: true,
    schema: { type: "string", uniqueItems: true },
  },
  namespace: {
    name: "namespace",
    in: "path",
    description: "object name and auth scope, such as for teams and projects",
    required: true,
    schema: { type: "string", uniqueItems: true },
  },
};

function jsonResponse(description: string, schemaName: string): Record<string, unknown> {
  return { description, content: { "application/json": { schema: ref(schemaName) } } };
}

function operation(
  s: Served,
  action: string,
  verb: string,
  id: string,
  params: unknown[],
  responses: Record<string, unknown>,
  kind = s.kind,
): Record<string, unknown> {
  return {
    tags: [`${s.group.replace(/\.(\w)/g, (_m, c: string) => c.toUpperCase())}_${s.version}`],
    description: `${verb} ${kind}`,
    operationId: id,
    parameters: params,
    responses,
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": { group: s.group, version: s.version, kind },
  };
}

function pathsFor(s: Served): Record<string, unknown> {
  const def = definitionName(s.group, s.version, s.kind);
  const listDef = definitionName(s.group, s.version, s.listKind);
  const base = `/apis/${s.group}/${s.version}`;
  const scoped = s.namespaced ? `${base}/namespaces/{namespace}/${s.plural}` : `${base}/${s.plural}`;
  const scopeParams = s.namespaced ? [P.namespace] : [];
  const ok = jsonResponse("OK", def);
  const write = [P.dryRun, P.fieldManager, P.fieldValidation];
  const listParams = [
    P.labelSelector,
    P.fieldSelector,
    P.limit,
    P.continue,
    P.resourceVersion,
    P.timeoutSeconds,
    P.watch,
  ];
  const suffix = `${s.group.replace(/\..*/, "")}${s.version}${s.kind}`;
  const ns = s.namespaced ? "Namespaced" : "";
  const paths: Record<string, unknown> = {
    [scoped]: {
      parameters: [...scopeParams, P.pretty],
      get: operation(
        s,
        "list",
        "list",
        `list${ns}${suffix}`,
        listParams,
        { "200": jsonResponse("OK", listDef) },
        s.listKind,
      ),
      post: operation(s, "post", "create", `create${ns}${suffix}`, write, {
        "200": ok,
        "201": jsonResponse("Created", def),
        "202": jsonResponse("Accepted", def),
      }),
      delete: operation(
        s,
        "deletecollection",
        "delete collection of",
        `deletecollection${ns}${suffix}`,
        [...listParams, P.dryRun],
        {
          "200": jsonResponse("OK", `${META}.Status`),
        },
      ),
    },
    [`${scoped}/{name}`]: {
      parameters: [P.name, ...scopeParams, P.pretty],
      get: operation(s, "get", "read the specified", `read${ns}${suffix}`, [P.resourceVersion], {
        "200": ok,
      }),
      put: operation(s, "put", "replace the specified", `replace${ns}${suffix}`, write, {
        "200": ok,
        "201": jsonResponse("Created", def),
      }),
      patch: operation(
        s,
        "patch",
        "partially update the specified",
        `patch${ns}${suffix}`,
        [...write, P.force],
        { "200": ok, "201": jsonResponse("Created", def) },
      ),
      delete: operation(s, "delete", "delete", `delete${ns}${suffix}`, [P.dryRun], {
        "200": jsonResponse("OK", `${META}.Status`),
        "202": jsonResponse("Accepted", `${META}.Status`),
      }),
    },
  };
  if (s.namespaced) {
    paths[`${base}/${s.plural}`] = {
      parameters: [P.pretty],
      get: operation(
        s,
        "list",
        "list",
        `list${suffix}ForAllNamespaces`,
        listParams,
        { "200": jsonResponse("OK", listDef) },
        s.listKind,
      ),
    };
  }
  if (s.status) {
    paths[`${scoped}/{name}/status`] = {
      parameters: [P.name, ...scopeParams, P.pretty],
      get: operation(
        s,
        "get",
        "read status of the specified",
        `read${ns}${suffix}Status`,
        [P.resourceVersion],
        { "200": ok },
      ),
      put: operation(s, "put", "replace status of the specified", `replace${ns}${suffix}Status`, write, {
        "200": ok,
        "201": jsonResponse("Created", def),
      }),
      patch: operation(
        s,
        "patch",
        "partially update status of the specified",
        `patch${ns}${suffix}Status`,
        [...write, P.force],
        { "200": ok },
      ),
    };
  }
  return paths;
}

/** ObjectMeta and the apimachinery types it references, enough for explain to resolve `metadata`. */
export function apimachinerySchemas(): Record<string, unknown> {
  const str = (description: string): Record<string, unknown> => ({ type: "string", description });
  const strMap = (description: string): Record<string, unknown> => ({
    type: "object",
    additionalProperties: { type: "string", default: "" },
    description,
  });
  return {
    [`${META}.ObjectMeta`]: {
      description:
        "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
      type: "object",
      properties: {
        annotations: strMap(
          "Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata.",
        ),
        creationTimestamp: {
          allOf: [ref(`${META}.Time`)],
          description:
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        },
        deletionGracePeriodSeconds: {
          type: "integer",
          format: "int64",
          description:
            "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system.",
        },
        deletionTimestamp: {
          allOf: [ref(`${META}.Time`)],
          description: "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted.",
        },
        finalizers: {
          type: "array",
          items: { type: "string", default: "" },
          description: "Must be empty before the object is deleted from the registry.",
          "x-kubernetes-list-type": "set",
          "x-kubernetes-patch-strategy": "merge",
        },
        generateName: str(
          "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided.",
        ),
        generation: {
          type: "integer",
          format: "int64",
          description: "A sequence number representing a specific generation of the desired state.",
        },
        labels: strMap(
          "Map of string keys and values that can be used to organize and categorize (scope and select) objects.",
        ),
        managedFields: {
          type: "array",
          items: { allOf: [ref(`${META}.ManagedFieldsEntry`)], default: {} },
          description:
            "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow.",
          "x-kubernetes-list-type": "atomic",
        },
        name: str("Name must be unique within a namespace."),
        namespace: str("Namespace defines the space within which each name must be unique."),
        ownerReferences: {
          type: "array",
          items: { allOf: [ref(`${META}.OwnerReference`)], default: {} },
          description: "List of objects depended by this object.",
          "x-kubernetes-list-map-keys": ["uid"],
          "x-kubernetes-list-type": "map",
          "x-kubernetes-patch-merge-key": "uid",
          "x-kubernetes-patch-strategy": "merge",
        },
        resourceVersion: str("An opaque value that represents the internal version of this object."),
        selfLink: str(
          "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system.",
        ),
        uid: str("UID is the unique in time and space value for this object."),
      },
    },
    [`${META}.ListMeta`]: {
      description:
        "ListMeta describes metadata that synthetic resources must have, including lists and various status objects.",
      type: "object",
      properties: {
        continue: str("continue may be set if the user set a limit on the number of items returned."),
        remainingItemCount: {
          type: "integer",
          format: "int64",
          description:
            "remainingItemCount is the number of subsequent items in the list which are not included in this list response.",
        },
        resourceVersion: str("String that identifies the server's internal version of this object."),
        selfLink: str(
          "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system.",
        ),
      },
    },
    [`${META}.Time`]: {
      description: "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.",
      type: "string",
      format: "date-time",
    },
    [`${META}.FieldsV1`]: {
      description: "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
      type: "object",
    },
    [`${META}.ManagedFieldsEntry`]: {
      description:
        "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.",
      type: "object",
      properties: {
        apiVersion: str("APIVersion defines the version of this resource that this field set applies to."),
        fieldsType: str("FieldsType is the discriminator for the different fields format and version."),
        fieldsV1: {
          allOf: [ref(`${META}.FieldsV1`)],
          description: 'FieldsV1 holds the first JSON version format as described in the "FieldsV1" type.',
        },
        manager: str("Manager is an identifier of the workflow managing these fields."),
        operation: str(
          "Operation is the type of operation which lead to this ManagedFieldsEntry being created.",
        ),
        subresource: str("Subresource is the name of the subresource used to update that object."),
        time: {
          allOf: [ref(`${META}.Time`)],
          description: "Time is the timestamp of when the ManagedFields entry was added.",
        },
      },
    },
    [`${META}.OwnerReference`]: {
      description: "OwnerReference contains enough information to let you identify an owning object.",
      type: "object",
      required: ["apiVersion", "kind", "name", "uid"],
      properties: {
        apiVersion: { type: "string", default: "", description: "API version of the referent." },
        blockOwnerDeletion: {
          type: "boolean",
          description:
            'If true, AND if the owner has the "foregroundDeletion" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed.',
        },
        controller: {
          type: "boolean",
          description: "If true, this reference points to the managing controller.",
        },
        kind: { type: "string", default: "", description: "Kind of the referent." },
        name: { type: "string", default: "", description: "Name of the referent." },
        uid: { type: "string", default: "", description: "UID of the referent." },
      },
      "x-kubernetes-map-type": "atomic",
    },
    [`${META}.Status`]: {
      description: "Status is a return value for calls that don't return other objects.",
      type: "object",
      properties: {
        apiVersion: { type: "string", description: API_VERSION_DESCRIPTION },
        code: {
          type: "integer",
          format: "int32",
          description: "Suggested HTTP return code for this status, 0 if not set.",
        },
        details: {
          type: "object",
          "x-kubernetes-preserve-unknown-fields": true,
          description: "Extended data associated with the reason.",
        },
        kind: { type: "string", description: KIND_DESCRIPTION },
        message: str("A human-readable description of the status of this operation."),
        metadata: { allOf: [ref(`${META}.ListMeta`)], default: {}, description: LIST_METADATA_DESCRIPTION },
        reason: str('A machine-readable description of why this operation is in the "Failure" status.'),
        status: str('Status of the operation. One of: "Success" or "Failure".'),
      },
      "x-kubernetes-group-version-kind": [{ group: "", kind: "Status", version: "v1" }],
    },
  };
}

/** The /openapi/v3/apis/<group>/<version> document for the CRDs serving that group/version. */
export function openApiV3ForGroupVersion(
  group: string,
  version: string,
  crds: Record<string, unknown>[],
): Record<string, unknown> {
  const served = servedKinds(group, version, crds).sort((a, b) => a.kind.localeCompare(b.kind));
  const schemas: Record<string, unknown> = {};
  let paths: Record<string, unknown> = {};
  for (const s of served) {
    schemas[definitionName(group, version, s.kind)] = kindSchema(s);
    schemas[definitionName(group, version, s.listKind)] = listSchema(s);
    paths = { ...paths, ...pathsFor(s) };
  }
  Object.assign(schemas, apimachinerySchemas());
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes CRD Swagger", version: "v0.1.0" },
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}
