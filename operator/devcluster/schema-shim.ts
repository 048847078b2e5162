// TEMPORARY stand-in for operator/devcluster/schema/ (the CRD schema engine another engineer is writing).
// Same signatures; just enough behaviour (prune, default, basic types, required, enum, ranges) for the
// server to run until the real engine lands. Delete this file when `./schema/index.js` exists.
import { getPath, humanDuration, isObj, type Obj } from "./util.js";

export interface FieldCause {
  reason: string;
  message: string;
  field: string;
}
export interface AdmitResult {
  object: Record<string, unknown>;
  causes: FieldCause[];
  warnings: string[];
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function walk(
  schema: Obj,
  value: unknown,
  path: string,
  out: { causes: FieldCause[]; unknown: string[] },
  root: boolean,
): unknown {
  if (schema["x-kubernetes-int-or-string"] === true) return value;
  const t = schema.type;
  if (isObj(value)) {
    if (t !== undefined && t !== "object") {
      out.causes.push({
        reason: "FieldValueTypeInvalid",
        message: `Invalid value: "object": ${path} in body must be of type ${String(t)}: "object"`,
        field: path,
      });
      return value;
    }
    const props = isObj(schema.properties) ? schema.properties : undefined;
    const addl = schema.additionalProperties;
    const res: Obj = {};
    for (const [k, v] of Object.entries(value)) {
      const sub = path ? `${path}.${k}` : k;
      if (root && (k === "apiVersion" || k === "kind" || k === "metadata")) {
        res[k] = v;
        continue;
      }
      const ps = props && isObj(props[k]) ? props[k] : isObj(addl) ? addl : undefined;
      if (ps) res[k] = walk(ps, v, sub, out, false);
      else if (schema["x-kubernetes-preserve-unknown-fields"] === true || addl === true) res[k] = v;
      else out.unknown.push(sub);
    }
    if (props) {
      for (const [k, ps] of Object.entries(props)) {
        if (res[k] === undefined && isObj(ps) && ps.default !== undefined)
          res[k] = structuredClone(ps.default);
      }
    }
    for (const r of Array.isArray(schema.required) ? schema.required : []) {
      if (res[String(r)] === undefined)
        out.causes.push({
          reason: "FieldValueRequired",
          message: "Required value",
          field: path ? `${path}.${String(r)}` : String(r),
        });
    }
    return res;
  }
  if (Array.isArray(value)) {
    if (t !== undefined && t !== "array") {
      out.causes.push({
        reason: "FieldValueTypeInvalid",
        message: `Invalid value: "array": ${path} in body must be of type ${String(t)}: "array"`,
        field: path,
      });
      return value;
    }
    const items = isObj(schema.items) ? schema.items : undefined;
    return value.map((v, i) => (items ? walk(items, v, `${path}[${i}]`, out, false) : v));
  }
  const vt = typeOf(value);
  if (t !== undefined && vt !== "null" && !(t === vt || (t === "number" && vt === "integer"))) {
    out.causes.push({
      reason: "FieldValueTypeInvalid",
      message: `Invalid value: "${vt}": ${path} in body must be of type ${String(t)}: "${vt}"`,
      field: path,
    });
    return value;
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    out.causes.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`,
      field: path,
    });
  }
  if (typeof value === "number") {
    if (typeof schema.maximum === "number" && value > schema.maximum)
      out.causes.push({
        reason: "FieldValueInvalid",
        message: `Invalid value: ${value}: ${path} in body should be less than or equal to ${schema.maximum}`,
        field: path,
      });
    if (typeof schema.minimum === "number" && value < schema.minimum)
      out.causes.push({
        reason: "FieldValueInvalid",
        message: `Invalid value: ${value}: ${path} in body should be greater than or equal to ${schema.minimum}`,
        field: path,
      });
  }
  if (
    typeof value === "string" &&
    typeof schema.pattern === "string" &&
    !new RegExp(schema.pattern).test(value)
  )
    out.causes.push({
      reason: "FieldValueInvalid",
      message: `Invalid value: "${value}": ${path} in body should match '${schema.pattern}'`,
      field: path,
    });
  return value;
}

export function admitCustomResource(opts: {
  schema: Record<string, unknown>;
  object: unknown;
  oldObject?: unknown;
  fieldValidation?: "Strict" | "Warn" | "Ignore";
}): AdmitResult {
  const out = { causes: [] as FieldCause[], unknown: [] as string[] };
  const object = walk(opts.schema, opts.object, "", out, true) as Obj;
  const fv = opts.fieldValidation ?? "Strict";
  const causes = [...out.causes];
  const warnings: string[] = [];
  for (const u of out.unknown) {
    if (fv === "Strict")
      causes.unshift({ reason: "FieldValueInvalid", message: `unknown field "${u}"`, field: u });
    else if (fv === "Warn") warnings.push(`unknown field "${u}"`);
  }
  return { object, causes, warnings };
}

export function validateCrd(_crd: Record<string, unknown>): FieldCause[] {
  return [];
}

export function openApiV3ForGroupVersion(
  group: string,
  version: string,
  crds: Record<string, unknown>[],
): Record<string, unknown> {
  const paths: Obj = {};
  const schemas: Obj = {};
  for (const crd of crds) {
    const spec = isObj(crd.spec) ? crd.spec : {};
    const names = isObj(spec.names) ? spec.names : {};
    const kind = String(names.kind);
    const plural = String(names.plural);
    const v = (Array.isArray(spec.versions) ? spec.versions : []).find(
      (x) => isObj(x) && x.name === version,
    ) as Obj | undefined;
    const s =
      isObj(v?.schema) && isObj(v.schema.openAPIV3Schema) ? v.schema.openAPIV3Schema : { type: "object" };
    const rev = group.split(".").reverse().join(".");
    const schemaName = `${rev}.${version}.${kind}`;
    schemas[schemaName] = { ...s, "x-kubernetes-group-version-kind": [{ group, version, kind }] };
    const ns = spec.scope === "Namespaced" ? "/namespaces/{namespace}" : "";
    paths[`/apis/${group}/${version}${ns}/${plural}/{name}`] = {
      patch: {
        "x-kubernetes-group-version-kind": { group, version, kind },
        parameters: [{ name: "fieldValidation", in: "query", schema: { type: "string" } }],
        responses: { "200": { description: "OK" } },
      },
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes CRD Swagger", version: "v0.1.0" },
    paths,
    components: { schemas },
  };
}

export function printerColumnsTable(
  columns: Record<string, unknown>[],
  objects: Record<string, unknown>[],
  includeObject: "None" | "Metadata" | "Object",
): Record<string, unknown> {
  const cols = [
    {
      name: "Name",
      type: "string",
      format: "name",
      jsonPath: ".metadata.name",
      description: "",
      priority: 0,
    },
  ];
  for (const c of columns)
    cols.push({
      ...(c as (typeof cols)[number]),
      format: String(c.format ?? ""),
      description: String(c.description ?? ""),
      priority: Number(c.priority ?? 0),
    });
  const rows = objects.map((o) => {
    const cells = cols.map((c) => {
      const v = getPath(o, c.jsonPath.replace(/^\./, ""));
      if (v === undefined) return null;
      if (c.type === "date")
        return typeof v === "string" ? humanDuration(Date.now() - Date.parse(v)) : "<invalid>";
      return v;
    });
    const row: Obj = { cells };
    if (includeObject === "Object") row.object = o;
    else if (includeObject === "Metadata")
      row.object = { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
    return row;
  });
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: {},
    columnDefinitions: cols.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format,
      description: c.description,
      priority: c.priority,
    })),
    rows,
  };
}
