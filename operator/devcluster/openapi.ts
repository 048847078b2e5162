// OpenAPI v3 as kubectl needs it (kubectl apply/create validate against it and send
// fieldValidation=Strict when the GV document has a PATCH operation for the kind; kubectl explain reads
// components.schemas). Built-ins get a minimal document; CRD group/versions come from the schema engine.
// https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-v3
import { createHash } from "node:crypto";
import { openApiV3ForGroupVersion } from "./crd-schema.js";
import { gvString, type Registry, type ResourceType } from "./registry.js";
import { isObj, type Obj } from "./util.js";

function itemPath(t: ResourceType): string {
  const base = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  return `${base}${t.namespaced ? "/namespaces/{namespace}" : ""}/${t.resource}/{name}`;
}

function patchOp(t: ResourceType): Obj {
  return {
    description: `partially update the specified ${t.kind}`,
    operationId: `patch${t.kind}`,
    "x-kubernetes-action": "patch",
    "x-kubernetes-group-version-kind": { group: t.group, version: t.version, kind: t.kind },
    parameters: [
      { name: "dryRun", in: "query", schema: { type: "string", uniqueItems: true } },
      { name: "fieldManager", in: "query", schema: { type: "string", uniqueItems: true } },
      { name: "fieldValidation", in: "query", schema: { type: "string", uniqueItems: true } },
      { name: "force", in: "query", schema: { type: "boolean", uniqueItems: true } },
    ],
    responses: { "200": { description: "OK" } },
  };
}

function schemaName(t: ResourceType): string {
  if (!t.group) return `io.k8s.api.core.${t.version}.${t.kind}`;
  const g = t.group.split(".").reverse().join(".");
  return `${g}.${t.version}.${t.kind}`;
}

/** Builds the GV document; CRD kinds through the schema engine, plus guaranteed PATCH paths and GVK schema entries. */
export function groupVersionDocument(reg: Registry, group: string, version: string): Obj | undefined {
  const types = reg.forGroupVersion(group, version);
  if (types.length === 0) return undefined;
  const crdTypes = types.filter((t) => t.crd);
  const doc: Obj =
    crdTypes.length > 0
      ? openApiV3ForGroupVersion(
          group,
          version,
          crdTypes.map((t) => t.crd?.crd ?? {}),
        )
      : {
          openapi: "3.0.0",
          info: { title: "Kubernetes", version: "v1.32.3" },
          paths: {},
          components: { schemas: {} },
        };
  const paths = (isObj(doc.paths) ? doc.paths : (doc.paths = {})) as Obj;
  if (!isObj(doc.components)) doc.components = { schemas: {} };
  const comps = doc.components as Obj;
  const schemas = (isObj(comps.schemas) ? comps.schemas : (comps.schemas = {})) as Obj;
  for (const t of types) {
    const p = itemPath(t);
    const existing = isObj(paths[p]) ? paths[p] : {};
    const patch = isObj(existing.patch) ? existing.patch : undefined;
    const hasGvk = patch && isObj(patch["x-kubernetes-group-version-kind"]);
    const hasFv =
      patch &&
      Array.isArray(patch.parameters) &&
      patch.parameters.some((x) => isObj(x) && x.name === "fieldValidation");
    if (!hasGvk || !hasFv) paths[p] = { ...existing, patch: patchOp(t) };
    const hasSchema = Object.values(schemas).some(
      (s) =>
        isObj(s) &&
        Array.isArray(s["x-kubernetes-group-version-kind"]) &&
        s["x-kubernetes-group-version-kind"].some(
          (g) => isObj(g) && g.kind === t.kind && g.group === t.group && g.version === t.version,
        ),
    );
    if (!hasSchema) {
      const crdSchema = t.crd?.schema;
      schemas[schemaName(t)] = {
        ...(crdSchema ?? {
          description: `${t.kind} (dev cluster: schema not published for built-in kinds).`,
          type: "object",
          "x-kubernetes-preserve-unknown-fields": true,
        }),
        "x-kubernetes-group-version-kind": [{ group: t.group, version: t.version, kind: t.kind }],
      };
    }
  }
  return doc;
}

/** Caches documents and their hashes until the registry changes. */
export class OpenApiCache {
  private gen = -1;
  private docs = new Map<string, { body: string; hash: string }>();

  constructor(private readonly reg: Registry) {}

  private refresh(): void {
    if (this.gen === this.reg.generation) return;
    this.gen = this.reg.generation;
    this.docs = new Map();
    for (const g of this.reg.groups()) {
      for (const v of g.versions) {
        const doc = groupVersionDocument(this.reg, g.name, v);
        if (!doc) continue;
        const body = JSON.stringify(doc);
        const hash = createHash("sha512").update(body).digest("hex").slice(0, 64).toUpperCase();
        const key = g.name ? `apis/${g.name}/${v}` : `api/${v}`;
        this.docs.set(key, { body, hash });
      }
    }
  }

  root(): Obj {
    this.refresh();
    const paths: Obj = {};
    for (const [k, d] of this.docs) paths[k] = { serverRelativeURL: `/openapi/v3/${k}?hash=${d.hash}` };
    return { paths };
  }

  /** The serialized document for `apis/<g>/<v>` or `api/v1`. */
  document(key: string): string | undefined {
    this.refresh();
    return this.docs.get(key)?.body;
  }
}

export { gvString };
