// Checks a CustomResourceDefinition before the server accepts it: names, versions, a structural schema for
// each version, defaults that validate, and CEL rules (and messageExpressions) that compile.
import * as cause from "./causes.js";
import { compileRule, rulesOf } from "./cel.js";
import { childPath, indexPath, keyPath } from "./paths.js";
import { parseJsonPath } from "./jsonpath.js";
import { pruneInPlace } from "./prune.js";
import { items, isIntOrString, preservesUnknown, properties, schemaList, stringList } from "./schema-node.js";
import { deepClone, isPlainObject, type FieldCause, type SchemaNode } from "./types.js";
import { validateValue } from "./validate.js";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const FORBIDDEN_KEYWORDS = [
  "$ref",
  "additionalItems",
  "patternProperties",
  "dependencies",
  "definitions",
  "id",
  "$schema",
];
const TYPES = new Set(["object", "array", "string", "integer", "number", "boolean"]);

/** Returns the causes that make the CRD invalid (empty when it is acceptable). */
export function validateCrd(crd: Record<string, unknown>): FieldCause[] {
  const causes: FieldCause[] = [];
  const spec = isPlainObject(crd.spec) ? crd.spec : undefined;
  if (!spec) return [cause.required("spec")];
  const group = typeof spec.group === "string" ? spec.group : "";
  if (group === "") causes.push(cause.required("spec.group"));
  else if (!DNS_SUBDOMAIN.test(group) || !group.includes("."))
    causes.push(cause.invalid("spec.group", group, "should be a domain with at least one dot"));
  const names = isPlainObject(spec.names) ? spec.names : {};
  const plural = typeof names.plural === "string" ? names.plural : "";
  const kind = typeof names.kind === "string" ? names.kind : "";
  if (plural === "") causes.push(cause.required("spec.names.plural"));
  else if (!DNS_LABEL.test(plural))
    causes.push(cause.invalid("spec.names.plural", plural, "a lowercase RFC 1123 label is required"));
  if (kind === "") causes.push(cause.required("spec.names.kind"));
  const meta = isPlainObject(crd.metadata) ? crd.metadata : {};
  if (plural && group && meta.name !== `${plural}.${group}`)
    causes.push(cause.invalid("metadata.name", meta.name ?? "", 'must be spec.names.plural+"."+spec.group'));
  if (spec.scope !== "Namespaced" && spec.scope !== "Cluster")
    causes.push(cause.notSupported("spec.scope", spec.scope ?? "", ["Cluster", "Namespaced"]));
  if (spec.preserveUnknownFields === true)
    causes.push(
      cause.invalid(
        "spec.preserveUnknownFields",
        true,
        "must be false in order to use defaults in the schema",
      ),
    );

  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0)
    causes.push(cause.required("spec.versions", "must have exactly one version marked as storage version"));
  const storage = versions.filter((v) => isPlainObject(v) && v.storage === true).length;
  if (versions.length > 0 && storage !== 1)
    causes.push(
      cause.invalid("spec.versions", storage, "must have exactly one version marked as storage version"),
    );
  const seen = new Set<string>();
  versions.forEach((v, i) => {
    const vp = indexPath("spec.versions", i);
    if (!isPlainObject(v)) return void causes.push(cause.typeInvalid(vp, "object", "must be an object"));
    const name = typeof v.name === "string" ? v.name : "";
    if (!DNS_LABEL.test(name))
      causes.push(cause.invalid(childPath(vp, "name"), name, "must be a DNS-1035 label"));
    if (seen.has(name)) causes.push(cause.duplicate(childPath(vp, "name"), name));
    seen.add(name);
    const schema =
      isPlainObject(v.schema) && isPlainObject(v.schema.openAPIV3Schema)
        ? v.schema.openAPIV3Schema
        : undefined;
    const sp = `${vp}.schema.openAPIV3Schema`;
    if (!schema) return void causes.push(cause.required(sp, "schemas are required"));
    if (schema.type !== "object")
      causes.push(cause.invalid(childPath(sp, "type"), schema.type ?? "", "must be object at the root"));
    checkNode(schema, sp, causes, { root: true, inJunctor: false });
    checkMetadata(schema, sp, causes);
    checkPrinterColumns(v.additionalPrinterColumns, childPath(vp, "additionalPrinterColumns"), causes);
  });
  return causes;
}

interface Where {
  root: boolean;
  inJunctor: boolean;
  /** Directly under anyOf/allOf of an `x-kubernetes-int-or-string` node, where `type: integer|string` is allowed. */
  intOrStringBranch?: boolean;
}

function checkNode(s: SchemaNode, path: string, causes: FieldCause[], where: Where): void {
  for (const k of FORBIDDEN_KEYWORDS)
    if (k in s) causes.push(cause.forbidden(childPath(path, k), `${k} is not supported`));
  if (s.uniqueItems === true)
    causes.push(
      cause.forbidden(
        childPath(path, "uniqueItems"),
        "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
      ),
    );
  if (Array.isArray(s.items))
    causes.push(cause.forbidden(childPath(path, "items"), "items must be a schema object and not an array"));
  const type = s.type;
  if (where.inJunctor) {
    for (const k of [
      "type",
      "default",
      "additionalProperties",
      "nullable",
      "x-kubernetes-preserve-unknown-fields",
      "x-kubernetes-int-or-string",
      "x-kubernetes-embedded-resource",
      "description",
    ])
      if (
        k in s &&
        !(k === "type" && where.intOrStringBranch && (s.type === "integer" || s.type === "string"))
      )
        causes.push(cause.forbidden(childPath(path, k), "must be empty to be structural"));
  } else {
    if (type === undefined || type === "") {
      if (!isIntOrString(s) && !preservesUnknown(s))
        causes.push(cause.required(childPath(path, "type"), "must not be empty for specified object fields"));
    } else if (typeof type !== "string" || !TYPES.has(type)) {
      causes.push(cause.notSupported(childPath(path, "type"), type, [...TYPES]));
    }
    if (type === "array" && !isPlainObject(s.items) && !where.inJunctor)
      causes.push(cause.required(childPath(path, "items"), "must be specified"));
    if (isIntOrString(s) && type !== undefined)
      causes.push(
        cause.forbidden(childPath(path, "type"), "must be empty if x-kubernetes-int-or-string is true"),
      );
  }
  if (isPlainObject(s.properties) && s.additionalProperties !== undefined && s.additionalProperties !== false)
    causes.push(
      cause.forbidden(
        childPath(path, "additionalProperties"),
        "additionalProperties and properties are mutual exclusive",
      ),
    );
  if (where.root && "default" in s)
    causes.push(cause.forbidden(childPath(path, "default"), "must not be set at the root"));

  checkListType(s, path, causes);
  checkRules(s, path, causes, where.root);
  if ("default" in s && !where.inJunctor) checkDefault(s, path, causes);

  const props = properties(s);
  if (props)
    for (const [k, p] of Object.entries(props))
      if (isPlainObject(p))
        checkNode(p, keyPath(childPath(path, "properties"), k), causes, {
          root: false,
          inJunctor: where.inJunctor,
        });
  if (isPlainObject(s.additionalProperties))
    checkNode(s.additionalProperties, childPath(path, "additionalProperties"), causes, {
      root: false,
      inJunctor: where.inJunctor,
    });
  const it = items(s);
  if (it) checkNode(it, childPath(path, "items"), causes, { root: false, inJunctor: where.inJunctor });
  for (const j of ["allOf", "anyOf", "oneOf"]) {
    const branch = { root: false, inJunctor: true, intOrStringBranch: j !== "oneOf" && isIntOrString(s) };
    schemaList(s[j]).forEach((sub, i) => checkNode(sub, indexPath(childPath(path, j), i), causes, branch));
  }
  if (isPlainObject(s.not))
    checkNode(s.not, childPath(path, "not"), causes, { root: false, inJunctor: true });
}

function checkListType(s: SchemaNode, path: string, causes: FieldCause[]): void {
  const lt = s["x-kubernetes-list-type"];
  if (lt === undefined) return;
  if (lt !== "atomic" && lt !== "set" && lt !== "map")
    return void causes.push(
      cause.notSupported(childPath(path, "x-kubernetes-list-type"), lt, ["atomic", "set", "map"]),
    );
  if (s.type !== "array")
    causes.push(
      cause.invalid(
        childPath(path, "type"),
        s.type ?? "",
        "must be array if x-kubernetes-list-type is specified",
      ),
    );
  if (lt !== "map") return;
  const keys = stringList(s["x-kubernetes-list-map-keys"]);
  if (keys.length === 0)
    return void causes.push(
      cause.required(
        childPath(path, "x-kubernetes-list-map-keys"),
        "must not be empty if x-kubernetes-list-type is map",
      ),
    );
  const it = items(s);
  const props = it ? properties(it) : undefined;
  const req = new Set(it ? stringList(it.required) : []);
  for (const k of keys) {
    const p = props?.[k];
    if (!p)
      causes.push(
        cause.required(
          childPath(path, "items.properties"),
          `entries for all x-kubernetes-list-map-keys must be specified (${k})`,
        ),
      );
    else if (!req.has(k) && p.default === undefined)
      causes.push(
        cause.required(
          childPath(path, "items.required"),
          `all x-kubernetes-list-map-keys must be required or have a default value (${k})`,
        ),
      );
  }
}

function checkRules(s: SchemaNode, path: string, causes: FieldCause[], isRoot: boolean): void {
  const raw = s["x-kubernetes-validations"];
  if (raw === undefined) return;
  if (!Array.isArray(raw))
    return void causes.push(
      cause.typeInvalid(childPath(path, "x-kubernetes-validations"), typeof raw, "must be a list"),
    );
  const valid = rulesOf(s);
  raw.forEach((r, i) => {
    const rp = indexPath(childPath(path, "x-kubernetes-validations"), i);
    if (!valid.includes(r as never)) return void causes.push(cause.required(childPath(rp, "rule")));
    const rule = valid[valid.indexOf(r as never)];
    if (!rule) return;
    const compiled = compileRule(s, rule, isRoot);
    if (!compiled.ok) {
      const field = compiled.error.startsWith("messageExpression")
        ? childPath(rp, "messageExpression")
        : childPath(rp, "rule");
      causes.push(
        cause.invalid(
          field,
          compiled.error.startsWith("messageExpression") ? rule.messageExpression : rule.rule,
          compiled.error,
        ),
      );
    }
    if (
      rule.reason !== undefined &&
      !["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"].includes(
        rule.reason,
      )
    )
      causes.push(
        cause.notSupported(childPath(rp, "reason"), rule.reason, [
          "FieldValueDuplicate",
          "FieldValueForbidden",
          "FieldValueInvalid",
          "FieldValueRequired",
        ]),
      );
    if (typeof rule.message === "string" && (rule.message.trim() === "" || /[\r\n]/.test(rule.message)))
      causes.push(
        cause.invalid(
          childPath(rp, "message"),
          rule.message,
          "message must be non-empty and may not contain line breaks",
        ),
      );
  });
}

/** A default must survive pruning unchanged and validate against its own schema. */
function checkDefault(s: SchemaNode, path: string, causes: FieldCause[]): void {
  const d = deepClone(s.default);
  const pruned = pruneInPlace(d, s, "", false);
  const dp = childPath(path, "default");
  for (const p of pruned) causes.push(cause.invalid(dp, s.default, `must not have unknown fields (${p})`));
  const inner: FieldCause[] = [];
  const withoutRules = { ...s };
  delete withoutRules.default;
  validateValue(d, withoutRules, "", inner);
  for (const c of inner) causes.push({ ...c, field: c.field ? `${dp}.${c.field}` : dp });
}

/** At `metadata`, only `type: object` and constraints on `name`/`generateName` are allowed. */
function checkMetadata(root: SchemaNode, path: string, causes: FieldCause[]): void {
  const meta = properties(root)?.metadata;
  if (!meta) return;
  const mp = keyPath(childPath(path, "properties"), "metadata");
  for (const k of Object.keys(meta))
    if (k !== "type" && k !== "properties" && k !== "description")
      causes.push(cause.forbidden(childPath(mp, k), "must not be specified for metadata"));
  const props = properties(meta);
  if (props)
    for (const k of Object.keys(props))
      if (k !== "name" && k !== "generateName")
        causes.push(
          cause.forbidden(
            keyPath(childPath(mp, "properties"), k),
            "must not be specified for metadata other than name and generateName",
          ),
        );
}

function checkPrinterColumns(cols: unknown, path: string, causes: FieldCause[]): void {
  if (cols === undefined) return;
  if (!Array.isArray(cols)) return void causes.push(cause.typeInvalid(path, typeof cols, "must be a list"));
  cols.forEach((c, i) => {
    const cp = indexPath(path, i);
    if (!isPlainObject(c)) return void causes.push(cause.typeInvalid(cp, typeof c, "must be an object"));
    if (typeof c.name !== "string" || c.name === "") causes.push(cause.required(childPath(cp, "name")));
    if (!["integer", "number", "string", "boolean", "date"].includes(String(c.type)))
      causes.push(
        cause.notSupported(childPath(cp, "type"), c.type ?? "", [
          "boolean",
          "date",
          "integer",
          "number",
          "string",
        ]),
      );
    if (typeof c.jsonPath !== "string" || c.jsonPath === "")
      causes.push(cause.required(childPath(cp, "jsonPath")));
    else if (!c.jsonPath.startsWith(".") || parseJsonPath(c.jsonPath) === null)
      causes.push(
        cause.invalid(childPath(cp, "jsonPath"), c.jsonPath, "must be a simple json path starting with ."),
      );
  });
}
