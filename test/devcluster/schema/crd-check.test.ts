// validateCrd: what the apiserver rejects when a CRD is created (structural schema rules from the CRD docs'
// "Specifying a structural schema", CEL rules that must compile, names and versions).
import { describe, expect, it } from "vitest";
import { validateCrd } from "../../../operator/devcluster/schema/index.js";

function crd(schema: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "widgets.example.com" },
    spec: {
      group: "example.com",
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: schema }, ...extra }],
    },
  };
}

const good = {
  type: "object",
  properties: {
    spec: {
      type: "object",
      properties: {
        size: { type: "integer", default: 1, minimum: 1 },
        port: { "x-kubernetes-int-or-string": true },
        free: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
        ups: {
          type: "array",
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["name"],
          items: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
        },
      },
      anyOf: [{ required: ["size"] }, { required: ["port"] }],
      "x-kubernetes-validations": [
        { rule: "self.size <= 10", messageExpression: "'size ' + string(self.size)" },
      ],
    },
  },
};

const prefix = "spec.versions[0].schema.openAPIV3Schema";

describe("validateCrd", () => {
  it("accepts a structural schema with compiling rules", () => {
    expect(validateCrd(crd(good))).toEqual([]);
  });

  it("rejects a non-structural schema: a node without type", () => {
    const causes = validateCrd(
      crd({ type: "object", properties: { spec: { properties: { a: { type: "string" } } } } }),
    );
    expect(causes.map((c) => [c.reason, c.field])).toEqual([
      ["FieldValueRequired", `${prefix}.properties[spec].type`],
    ]);
  });

  it("rejects a type inside anyOf/allOf (junctors may not add structure)", () => {
    const causes = validateCrd(
      crd({ type: "object", properties: { a: { type: "string", anyOf: [{ type: "string" }] } } }),
    );
    expect(causes.map((c) => c.field)).toEqual([`${prefix}.properties[a].anyOf[0].type`]);
  });

  it("rejects properties together with additionalProperties", () => {
    const causes = validateCrd(
      crd({
        type: "object",
        properties: { a: { type: "object", properties: {}, additionalProperties: { type: "string" } } },
      }),
    );
    expect(causes.map((c) => c.field)).toEqual([`${prefix}.properties[a].additionalProperties`]);
  });

  it("rejects an uncompilable rule at the rule's path", () => {
    const causes = validateCrd(crd({ type: "object", "x-kubernetes-validations": [{ rule: "self.a >" }] }));
    expect(causes).toHaveLength(1);
    expect(causes[0]?.field).toBe(`${prefix}.x-kubernetes-validations[0].rule`);
    expect(causes[0]?.message).toContain("compilation failed");
  });

  it("rejects a rule that calls an unknown function, and a bad messageExpression", () => {
    const causes = validateCrd(
      crd({
        type: "object",
        "x-kubernetes-validations": [{ rule: "nope(self)" }, { rule: "true", messageExpression: "'a' +" }],
      }),
    );
    expect(causes.map((c) => c.field)).toEqual([
      `${prefix}.x-kubernetes-validations[0].rule`,
      `${prefix}.x-kubernetes-validations[1].messageExpression`,
    ]);
  });

  it("rejects a default that does not validate", () => {
    const causes = validateCrd(crd({ type: "object", properties: { n: { type: "integer", default: "x" } } }));
    expect(causes.map((c) => c.field)).toEqual([`${prefix}.properties[n].default`]);
  });

  it("rejects list-type map keys that are neither required nor defaulted", () => {
    const schema = {
      type: "object",
      properties: {
        l: {
          type: "array",
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["k"],
          items: { type: "object", properties: { k: { type: "string" } } },
        },
      },
    };
    expect(validateCrd(crd(schema)).map((c) => c.field)).toEqual([`${prefix}.properties[l].items.required`]);
  });

  it("rejects metadata constraints other than name/generateName", () => {
    const schema = {
      type: "object",
      properties: { metadata: { type: "object", properties: { labels: { type: "object" } } } },
    };
    expect(validateCrd(crd(schema)).map((c) => c.field)).toEqual([
      `${prefix}.properties[metadata].properties[labels]`,
    ]);
  });

  it("checks names, scope and the storage version", () => {
    const bad = crd(good);
    const spec = bad.spec as Record<string, unknown>;
    spec.scope = "Galaxy";
    (bad.metadata as Record<string, unknown>).name = "wrong";
    (spec.versions as Array<Record<string, unknown>>)[0]!.storage = false;
    expect(
      validateCrd(bad)
        .map((c) => c.field)
        .sort(),
    ).toEqual(["metadata.name", "spec.scope", "spec.versions"]);
  });

  it("checks printer column JSONPaths", () => {
    const ok = [{ name: "R", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' }];
    expect(validateCrd(crd(good, { additionalPrinterColumns: ok }))).toEqual([]);
    const bad = [{ name: "R", type: "string", jsonPath: "status.x" }];
    expect(validateCrd(crd(good, { additionalPrinterColumns: bad })).map((c) => c.field)).toEqual([
      "spec.versions[0].additionalPrinterColumns[0].jsonPath",
    ]);
  });

  it("checks printer column types", () => {
    const causes = validateCrd(
      crd(good, { additionalPrinterColumns: [{ name: "X", type: "float", jsonPath: ".spec.size" }] }),
    );
    expect(causes.map((c) => c.field)).toEqual(["spec.versions[0].additionalPrinterColumns[0].type"]);
  });
});

describe("validateCrd: fields read by CEL rules must exist in the schema", () => {
  const spec = {
    type: "object",
    properties: {
      a: { type: "integer" },
      ups: { type: "array", items: { type: "object", properties: { name: { type: "string" } } } },
      labels: { type: "object", additionalProperties: { type: "string" } },
      free: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
    },
  };
  const withRule = (rule: string, root = false): Record<string, unknown> =>
    root
      ? crd({ type: "object", properties: { spec }, "x-kubernetes-validations": [{ rule }] })
      : crd({ type: "object", properties: { spec: { ...spec, "x-kubernetes-validations": [{ rule }] } } });

  it.each([
    "self.a > 0",
    "has(self.a)",
    "self.ups.all(u, u.name != '')",
    "self.labels.all(k, self.labels[k] != '')",
    "self.labels['x'] == 'y'",
    "self.free.anything.goes == 1",
    "self.ups[0].name == 'x'",
  ])("accepts %s", (rule) => {
    expect(validateCrd(withRule(rule))).toEqual([]);
  });

  it.each([
    ["self.b > 0", "b"],
    ["has(self.b)", "b"],
    ["self.ups.all(u, u.nmae != '')", "nmae"],
    ["self.ups[0].nope == 1", "nope"],
  ])("rejects %s (undefined field '%s')", (rule, field) => {
    const causes = validateCrd(withRule(rule));
    expect(causes.map((c) => c.field)).toEqual([
      `${prefix}.properties[spec].x-kubernetes-validations[0].rule`,
    ]);
    expect(causes[0]?.message).toContain(`undefined field '${field}'`);
  });

  it("lets root rules read metadata.name but not other metadata", () => {
    expect(validateCrd(withRule("self.metadata.name.startsWith('a') && self.spec.a > 0", true))).toEqual([]);
    expect(validateCrd(withRule("has(self.metadata.labels)", true))[0]?.message).toContain(
      "undefined field 'labels'",
    );
  });
});
