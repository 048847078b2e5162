// x-kubernetes-validations rules (CRD docs, "Validation rules"): self/oldSelf, transition rules only on update
// with an old value, message/messageExpression/fieldPath/reason, runtime errors as causes, the Kubernetes type
// mapping (integer → int, format duration → duration) and the extension functions registered on cel-js.
import { describe, expect, it } from "vitest";
import { admitCustomResource, validateCrd } from "../../../operator/devcluster/schema/index.js";
import { compileRule } from "../../../operator/devcluster/schema/cel.js";
import { admitSpec, brief } from "./helpers.js";

function crdFor(spec: Record<string, unknown>): Record<string, unknown> {
  return {
    metadata: { name: "things.t.example.com" },
    spec: {
      group: "t.example.com",
      scope: "Namespaced",
      names: { plural: "things", kind: "Thing" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", properties: { spec } } },
        },
      ],
    },
  };
}

function withRules(
  spec: Record<string, unknown>,
  rules: Array<Record<string, unknown>>,
): Record<string, unknown> {
  return { ...spec, "x-kubernetes-validations": rules };
}

const counts = {
  type: "object",
  properties: { replicas: { type: "integer" }, maxReplicas: { type: "integer" }, name: { type: "string" } },
};

describe("CEL rules", () => {
  it("evaluates self with cross-field comparisons", () => {
    const schema = withRules(counts, [{ rule: "self.replicas <= self.maxReplicas" }]);
    expect(admitSpec(schema, { replicas: 1, maxReplicas: 2 }).causes).toEqual([]);
    const r = admitSpec(schema, { replicas: 3, maxReplicas: 2 });
    expect(r.causes).toEqual([
      {
        reason: "FieldValueInvalid",
        field: "spec",
        message: 'Invalid value: "object": failed rule: self.replicas <= self.maxReplicas',
      },
    ]);
  });

  it("uses message when set", () => {
    const schema = withRules(counts, [{ rule: "self.replicas <= self.maxReplicas", message: "too many" }]);
    expect(admitSpec(schema, { replicas: 3, maxReplicas: 2 }).causes[0]?.message).toBe(
      'Invalid value: "object": too many',
    );
  });

  it("uses messageExpression over message", () => {
    const schema = withRules(counts, [
      {
        rule: "self.replicas <= self.maxReplicas",
        message: "static",
        messageExpression: '"replicas " + string(self.replicas) + " exceeds " + string(self.maxReplicas)',
      },
    ]);
    expect(admitSpec(schema, { replicas: 3, maxReplicas: 2 }).causes[0]?.message).toBe(
      'Invalid value: "object": replicas 3 exceeds 2',
    );
  });

  it("falls back to message when messageExpression fails at runtime", () => {
    const schema = withRules(counts, [
      { rule: "self.replicas <= 1", message: "static", messageExpression: "self.name" },
    ]);
    expect(admitSpec(schema, { replicas: 3 }).causes[0]?.message).toBe('Invalid value: "object": static');
  });

  it("reports at fieldPath, relative to the rule's node", () => {
    const schema = {
      type: "object",
      properties: {
        limits: withRules(counts, [{ rule: "self.replicas <= self.maxReplicas", fieldPath: ".replicas" }]),
      },
    };
    expect(brief(admitSpec(schema, { limits: { replicas: 3, maxReplicas: 2 } }))).toEqual([
      ["FieldValueInvalid", "spec.limits.replicas"],
    ]);
  });

  it("reports at the rule's node path inside lists", () => {
    const schema = {
      type: "array",
      items: withRules({ type: "object", properties: { a: { type: "integer" } } }, [{ rule: "self.a > 0" }]),
    };
    expect(brief(admitSpec(schema, [{ a: 1 }, { a: 0 }]))).toEqual([["FieldValueInvalid", "spec[1]"]]);
  });

  it("honours reason", () => {
    const forbidden = withRules(counts, [
      { rule: "!has(self.name)", message: "name is not allowed", reason: "FieldValueForbidden" },
    ]);
    expect(admitSpec(forbidden, { name: "x" }).causes).toEqual([
      { reason: "FieldValueForbidden", field: "spec", message: "Forbidden: name is not allowed" },
    ]);
    const required = withRules(counts, [
      { rule: "has(self.name)", message: "name please", reason: "FieldValueRequired" },
    ]);
    expect(admitSpec(required, {}).causes[0]).toEqual({
      reason: "FieldValueRequired",
      field: "spec",
      message: "Required value: name please",
    });
  });

  it("has(), size(), all/exists/exists_one, string matches", () => {
    const schema = withRules(
      {
        type: "object",
        properties: { tags: { type: "array", items: { type: "string" } }, host: { type: "string" } },
      },
      [
        { rule: "!has(self.tags) || size(self.tags) <= 3", message: "size" },
        { rule: "!has(self.tags) || self.tags.all(t, t.matches('^[a-z]+$'))", message: "all" },
        { rule: "!has(self.tags) || self.tags.exists(t, t == 'main')", message: "exists" },
        { rule: "!has(self.tags) || self.tags.exists_one(t, t.startsWith('m'))", message: "exists_one" },
      ],
    );
    expect(admitSpec(schema, { tags: ["main", "b"] }).causes).toEqual([]);
    expect(admitSpec(schema, {}).causes).toEqual([]);
    const r = admitSpec(schema, { tags: ["Main", "mb", "mc", "d"] });
    expect(r.causes.map((c) => c.message.replace('Invalid value: "object": ', ""))).toEqual([
      "size",
      "all",
      "exists",
      "exists_one",
    ]);
  });

  it("compares durations (duration() on strings)", () => {
    const schema = withRules(
      { type: "object", properties: { base: { type: "string" }, max: { type: "string" } } },
      [
        {
          rule: "duration(self.max) >= duration(self.base)",
          message: "max must be at least base",
          fieldPath: ".max",
        },
      ],
    );
    expect(admitSpec(schema, { base: "100ms", max: "10s" }).causes).toEqual([]);
    expect(admitSpec(schema, { base: "1m", max: "1m" }).causes).toEqual([]);
    expect(brief(admitSpec(schema, { base: "1h30m", max: "90s" }))).toEqual([
      ["FieldValueInvalid", "spec.max"],
    ]);
  });

  it("maps format: duration strings to CEL durations", () => {
    const schema = withRules({ type: "object", properties: { t: { type: "string", format: "duration" } } }, [
      { rule: "self.t <= duration('5s')" },
    ]);
    expect(admitSpec(schema, { t: "2s" }).causes).toEqual([]);
    expect(admitSpec(schema, { t: "6s" }).causes).toHaveLength(1);
  });

  it("treats null-valued (nullable) fields as absent", () => {
    const schema = withRules({ type: "object", properties: { name: { type: "string", nullable: true } } }, [
      { rule: "!has(self.name)" },
    ]);
    expect(admitSpec(schema, { name: null }).causes).toEqual([]);
    expect(admitSpec(schema, { name: "x" }).causes).toHaveLength(1);
  });

  it("maps integer fields to CEL int (integer literals compare and add)", () => {
    const schema = withRules(counts, [{ rule: "self.replicas + 1 == 3" }]);
    expect(admitSpec(schema, { replicas: 2 }).causes).toEqual([]);
  });

  it("turns a runtime error into a cause instead of throwing", () => {
    const schema = withRules(counts, [{ rule: "self.name.startsWith('a')" }]);
    const r = admitSpec(schema, { replicas: 1 });
    expect(brief(r)).toEqual([["FieldValueInvalid", "spec"]]);
    expect(r.causes[0]?.message).toMatch(/no such key: name evaluating rule: self.name.startsWith\('a'\)/);
  });

  it("division by zero is a cause too", () => {
    const schema = withRules(counts, [{ rule: "self.replicas / self.maxReplicas > 0" }]);
    expect(admitSpec(schema, { replicas: 1, maxReplicas: 0 }).causes[0]?.message).toMatch(/division by zero/);
  });

  it("skips CEL rules when a blocking schema error exists, and says so", () => {
    const schema = withRules(counts, [{ rule: "self.replicas <= self.maxReplicas" }]);
    const r = admitSpec(schema, { replicas: "three", maxReplicas: 2 });
    expect(brief(r)).toEqual([
      ["FieldValueTypeInvalid", "spec.replicas"],
      ["FieldValueInvalid", "<nil>"],
    ]);
    expect(r.causes[1]?.message).toContain("some validation rules were not checked");
  });

  it("runs root rules with metadata.name visible", () => {
    const schema = {
      type: "object",
      properties: { spec: { type: "object", properties: {} } },
      "x-kubernetes-validations": [
        { rule: "self.metadata.name.startsWith('a')", message: "name must start with a" },
      ],
    };
    expect(admitSpec(schema.properties.spec, {}).causes).toEqual([]);
    const r = admitCustomResource({
      schema,
      object: { apiVersion: "x/v1", kind: "K", metadata: { name: "b" }, spec: {} },
    });
    expect(brief(r)).toEqual([["FieldValueInvalid", "<nil>"]]); // root rules report at a nil field.Path
  });
});

describe("CEL property-name escaping", () => {
  it("reads dashed, dotted and keyword properties through escaped names; map keys stay plain", () => {
    const schema = withRules(
      {
        type: "object",
        properties: {
          "max-rps": { type: "integer" },
          "a.b": { type: "string" },
          namespace: { type: "string" },
          labels: { type: "object", additionalProperties: { type: "string" } },
        },
      },
      [
        {
          rule: "self.max__dash__rps == 1 && self.a__dot__b == 'x' && self.__namespace__ == 'n' && self.labels['app-name'] == 'y'",
        },
      ],
    );
    expect(
      admitSpec(schema, { "max-rps": 1, "a.b": "x", namespace: "n", labels: { "app-name": "y" } }).causes,
    ).toEqual([]);
    expect(validateCrd(crdFor(schema))).toEqual([]);
  });
});

describe("CEL transition rules (oldSelf)", () => {
  const immutable = {
    type: "object",
    properties: {
      mode: withRules({ type: "string" }, [{ rule: "self == oldSelf", message: "mode is immutable" }]),
      limit: withRules({ type: "integer" }, [{ rule: "self >= oldSelf", message: "limit may only grow" }]),
    },
  };

  it("is skipped on create", () => {
    expect(admitSpec(immutable, { mode: "a", limit: 1 }).causes).toEqual([]);
  });

  it("is evaluated on update when the old value exists", () => {
    expect(admitSpec(immutable, { mode: "a", limit: 2 }, { mode: "a", limit: 1 }).causes).toEqual([]);
    expect(brief(admitSpec(immutable, { mode: "b", limit: 0 }, { mode: "a", limit: 1 }))).toEqual([
      ["FieldValueInvalid", "spec.mode"],
      ["FieldValueInvalid", "spec.limit"],
    ]);
  });

  it("is skipped on update when the field was absent before", () => {
    expect(admitSpec(immutable, { mode: "b" }, {}).causes).toEqual([]);
  });

  it("correlates list-type map items by key, and not other lists", () => {
    const item = withRules(
      {
        type: "object",
        required: ["name"],
        properties: { name: { type: "string" }, port: { type: "integer" } },
      },
      [{ rule: "self.port == oldSelf.port", message: "port is immutable" }],
    );
    const schema = {
      type: "object",
      properties: {
        ups: {
          type: "array",
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["name"],
          items: item,
        },
      },
    };
    const old = {
      ups: [
        { name: "a", port: 1 },
        { name: "b", port: 2 },
      ],
    };
    expect(
      admitSpec(
        schema,
        {
          ups: [
            { name: "b", port: 2 },
            { name: "a", port: 1 },
            { name: "c", port: 9 },
          ],
        },
        old,
      ).causes,
    ).toEqual([]);
    expect(brief(admitSpec(schema, { ups: [{ name: "b", port: 3 }] }, old))).toEqual([
      ["FieldValueInvalid", "spec.ups[0]"],
    ]);
  });

  it("optionalOldSelf gives an optional oldSelf, evaluated on create too", () => {
    const schema = {
      type: "object",
      properties: {
        v: withRules({ type: "integer" }, [
          { rule: "!oldSelf.hasValue() || self >= oldSelf.value()", optionalOldSelf: true },
        ]),
      },
    };
    expect(admitSpec(schema, { v: 1 }).causes).toEqual([]);
    expect(admitSpec(schema, { v: 1 }, { v: 2 }).causes).toHaveLength(1);
  });
});

describe("Kubernetes CEL library on cel-js", () => {
  const s = withRules(
    {
      type: "object",
      properties: { s: { type: "string" }, l: { type: "array", items: { type: "integer" } } },
    },
    [],
  );
  const check = (rule: string, value: unknown): boolean => {
    const schema = { ...s, "x-kubernetes-validations": [{ rule }] };
    const r = admitSpec(schema, value);
    if (r.causes.some((c) => !c.message.includes("failed rule"))) throw new Error(r.causes[0]?.message);
    return r.causes.length === 0;
  };

  it.each([
    ["self.s.lowerAscii() == 'abc'", { s: "ABC" }],
    ["self.s.replace('a', 'b') == 'bbc'", { s: "abc" }],
    ["self.s.charAt(1) == 'b'", { s: "abc" }],
    ["self.s.split(',').size() == 2", { s: "a,b" }],
    ["self.s.find('[0-9]+') == '42'", { s: "ab42cd" }],
    ["self.s.findAll('[0-9]').size() == 3", { s: "1a2b3" }],
    ["self.l.isSorted() && self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3", { l: [1, 2, 3] }],
    ["self.l.indexOf(2) == 1", { l: [1, 2, 3] }],
    [
      "isURL(self.s) && url(self.s).getHost() == 'example.com:8080' && url(self.s).getScheme() == 'https'",
      { s: "https://example.com:8080/x" },
    ],
    ["isQuantity(self.s) && quantity(self.s).isGreaterThan(quantity('1Gi'))", { s: "2Gi" }],
    ["quantity(self.s).compareTo(quantity('100m')) == 0", { s: "0.1" }],
    ["timestamp(self.s) > timestamp('2020-01-01T00:00:00Z')", { s: "2024-01-01T00:00:00Z" }],
  ])("%s", (rule, value) => {
    expect(check(rule, value)).toBe(true);
  });

  it("caches the compiled program per (schema node, rule)", () => {
    const node = { type: "object", "x-kubernetes-validations": [{ rule: "true" }] };
    const a = compileRule(node, { rule: "true" });
    expect(compileRule(node, { rule: "true" })).toBe(a);
    expect(compileRule({ ...node }, { rule: "true" })).not.toBe(a);
  });
});
