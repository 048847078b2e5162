// Schema validation keywords, one passing and one failing case each. Messages follow the apiserver's wording
// (apiextensions-apiserver converting kube-openapi validation errors to field errors); tests pin reason and field.
import { describe, expect, it } from "vitest";
import { admitCustomResource } from "../../../operator/devcluster/schema/index.js";
import { admitSpec, brief } from "./helpers.js";

type Case = [
  name: string,
  schema: Record<string, unknown>,
  ok: unknown,
  bad: unknown,
  reason: string,
  field: string,
  message?: string,
];

const cases: Case[] = [
  [
    "type integer",
    { type: "integer" },
    3,
    "string",
    "FieldValueTypeInvalid",
    "spec",
    'Invalid value: "string": spec in body must be of type integer: "string"',
  ],
  ["type integer rejects a float", { type: "integer" }, 3, 1.5, "FieldValueTypeInvalid", "spec"],
  ["type number accepts an integer", { type: "number" }, 3, "x", "FieldValueTypeInvalid", "spec"],
  ["type string", { type: "string" }, "x", 1, "FieldValueTypeInvalid", "spec"],
  ["type boolean", { type: "boolean" }, true, "true", "FieldValueTypeInvalid", "spec"],
  ["type array", { type: "array", items: { type: "string" } }, ["a"], "a", "FieldValueTypeInvalid", "spec"],
  ["type object", { type: "object", properties: {} }, {}, [], "FieldValueTypeInvalid", "spec"],
  [
    "enum",
    { type: "string", enum: ["a", "b"] },
    "a",
    "x",
    "FieldValueNotSupported",
    "spec",
    'Unsupported value: "x": supported values: "a", "b"',
  ],
  [
    "maximum",
    { type: "integer", maximum: 100 },
    100,
    200,
    "FieldValueInvalid",
    "spec",
    "Invalid value: 200: spec in body should be less than or equal to 100",
  ],
  [
    "exclusiveMaximum",
    { type: "integer", maximum: 100, exclusiveMaximum: true },
    99,
    100,
    "FieldValueInvalid",
    "spec",
    "Invalid value: 100: spec in body should be less than 100",
  ],
  [
    "minimum",
    { type: "integer", minimum: 1 },
    1,
    0,
    "FieldValueInvalid",
    "spec",
    "Invalid value: 0: spec in body should be greater than or equal to 1",
  ],
  [
    "exclusiveMinimum",
    { type: "number", minimum: 0, exclusiveMinimum: true },
    0.5,
    0,
    "FieldValueInvalid",
    "spec",
    "Invalid value: 0: spec in body should be greater than 0",
  ],
  ["multipleOf", { type: "integer", multipleOf: 5 }, 10, 12, "FieldValueInvalid", "spec"],
  ["maxLength", { type: "string", maxLength: 3 }, "abc", "abcd", "FieldValueTooLong", "spec"],
  [
    "minLength",
    { type: "string", minLength: 2 },
    "ab",
    "a",
    "FieldValueInvalid",
    "spec",
    'Invalid value: "a": spec in body should be at least 2 chars long',
  ],
  [
    "pattern",
    { type: "string", pattern: "^[a-z]+$" },
    "abc",
    "ABC",
    "FieldValueInvalid",
    "spec",
    "Invalid value: \"ABC\": spec in body should match '^[a-z]+$'",
  ],
  [
    "format date-time",
    { type: "string", format: "date-time" },
    "2024-01-02T03:04:05Z",
    "yesterday",
    "FieldValueInvalid",
    "spec",
  ],
  ["format int32", { type: "integer", format: "int32" }, 5, 2 ** 40, "FieldValueInvalid", "spec"],
  [
    "maxItems",
    { type: "array", maxItems: 2, items: { type: "integer" } },
    [1, 2],
    [1, 2, 3],
    "FieldValueTooMany",
    "spec",
    "Too many: 3: must have at most 2 items",
  ],
  [
    "minItems",
    { type: "array", minItems: 1, items: { type: "integer" } },
    [1],
    [],
    "FieldValueInvalid",
    "spec",
  ],
  [
    "uniqueItems",
    { type: "array", uniqueItems: true, items: { type: "integer" } },
    [1, 2],
    [1, 1],
    "FieldValueInvalid",
    "spec",
  ],
  [
    "maxProperties",
    { type: "object", maxProperties: 1, additionalProperties: { type: "string" } },
    { a: "x" },
    { a: "x", b: "y" },
    "FieldValueTooMany",
    "spec",
  ],
  [
    "minProperties",
    { type: "object", minProperties: 1, additionalProperties: { type: "string" } },
    { a: "x" },
    {},
    "FieldValueInvalid",
    "spec",
  ],
  [
    "required",
    { type: "object", required: ["name"], properties: { name: { type: "string" } } },
    { name: "x" },
    {},
    "FieldValueRequired",
    "spec.name",
    "Required value",
  ],
  [
    "additionalProperties schema",
    { type: "object", additionalProperties: { type: "integer" } },
    { a: 1 },
    { a: "x" },
    "FieldValueTypeInvalid",
    "spec[a]",
  ],
  [
    "nullable",
    { type: "object", properties: { a: { type: "array", items: { type: "string", nullable: false } } } },
    { a: ["x"] },
    { a: [null] },
    "FieldValueTypeInvalid",
    "spec.a[0]",
  ],
  [
    "x-kubernetes-int-or-string",
    { "x-kubernetes-int-or-string": true },
    "50%",
    true,
    "FieldValueTypeInvalid",
    "spec",
  ],
  ["allOf", { type: "integer", allOf: [{ minimum: 1 }, { maximum: 5 }] }, 3, 7, "FieldValueInvalid", "spec"],
  [
    "anyOf",
    {
      type: "object",
      properties: { a: { type: "string" }, b: { type: "string" } },
      anyOf: [{ required: ["a"] }, { required: ["b"] }],
    },
    { b: "x" },
    {},
    "FieldValueInvalid",
    "spec",
  ],
  [
    "oneOf",
    {
      type: "object",
      properties: { a: { type: "string" }, b: { type: "string" } },
      oneOf: [{ required: ["a"] }, { required: ["b"] }],
    },
    { a: "x" },
    { a: "x", b: "y" },
    "FieldValueInvalid",
    "spec",
  ],
  ["not", { type: "string", not: { enum: ["forbidden"] } }, "fine", "forbidden", "FieldValueInvalid", "spec"],
];

describe("schema validation keywords", () => {
  for (const [name, schema, ok, bad, reason, field, message] of cases) {
    it(`${name}: accepts a valid value`, () => {
      expect(admitSpec(schema, ok).causes).toEqual([]);
    });
    it(`${name}: rejects an invalid value with ${reason} at ${field}`, () => {
      const r = admitSpec(schema, bad);
      expect(brief(r)[0]).toEqual([reason, field]);
      if (message) expect(r.causes[0]?.message).toBe(message);
    });
  }

  it("x-kubernetes-int-or-string accepts integers", () => {
    expect(admitSpec({ "x-kubernetes-int-or-string": true }, 3).causes).toEqual([]);
  });

  it("format duration accepts Go and Scala-style durations", () => {
    for (const d of ["1h30m", "250ms", "22 ns", "3 days"])
      expect(admitSpec({ type: "string", format: "duration" }, d).causes).toEqual([]);
    expect(admitSpec({ type: "string", format: "duration" }, "soon").causes).toHaveLength(1);
  });

  it("nullable: true accepts null and keeps it", () => {
    const r = admitSpec(
      { type: "object", properties: { a: { type: "string", nullable: true } } },
      { a: null },
    );
    expect(r.causes).toEqual([]);
    expect(r.object.spec).toEqual({ a: null });
  });

  it("reports nested paths in field.Path notation", () => {
    const schema = {
      type: "object",
      properties: {
        upstreams: {
          type: "array",
          items: {
            type: "object",
            properties: {
              retry: {
                type: "object",
                properties: {
                  backoff: { type: "object", properties: { max: { type: "integer", maximum: 10 } } },
                },
              },
            },
          },
        },
      },
    };
    const r = admitSpec(schema, { upstreams: [{}, { retry: { backoff: { max: 11 } } }] });
    expect(brief(r)).toEqual([["FieldValueInvalid", "spec.upstreams[1].retry.backoff.max"]]);
  });

  it("x-kubernetes-list-type: map rejects duplicate keys as Duplicate value at the later index", () => {
    const schema = {
      type: "array",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name", "port"],
      items: {
        type: "object",
        required: ["name", "port"],
        properties: { name: { type: "string" }, port: { type: "integer" }, w: { type: "integer" } },
      },
    };
    expect(
      admitSpec(schema, [
        { name: "a", port: 1 },
        { name: "a", port: 2 },
      ]).causes,
    ).toEqual([]);
    const r = admitSpec(schema, [
      { name: "a", port: 1 },
      { name: "b", port: 1 },
      { name: "a", port: 1, w: 3 },
    ]);
    expect(brief(r)).toEqual([["FieldValueDuplicate", "spec[2]"]]);
    expect(r.causes[0]?.message).toBe('Duplicate value: {"name":"a","port":1}');
  });

  it("x-kubernetes-list-type: set rejects duplicate values", () => {
    const schema = { type: "array", "x-kubernetes-list-type": "set", items: { type: "string" } };
    expect(admitSpec(schema, ["a", "b"]).causes).toEqual([]);
    const r = admitSpec(schema, ["a", "b", "a"]);
    expect(brief(r)).toEqual([["FieldValueDuplicate", "spec[2]"]]);
    expect(r.causes[0]?.message).toBe('Duplicate value: "a"');
  });

  it("validates metadata.name only against name/generateName constraints", () => {
    const schema = {
      type: "object",
      properties: { metadata: { type: "object", properties: { name: { type: "string", maxLength: 3 } } } },
    };
    const r = admitCustomResource({
      schema,
      object: { apiVersion: "a/v1", kind: "K", metadata: { name: "toolong" } },
    });
    expect(brief(r)).toEqual([["FieldValueTooLong", "metadata.name"]]);
  });

  it("never throws on a non-object body", () => {
    const r = admitCustomResource({ schema: { type: "object" }, object: "nope" });
    expect(r.causes).toHaveLength(1);
  });
});
