// Pruning and defaulting, following the CRD docs ("Field pruning", "Defaulting"): unknown fields are dropped
// unless x-kubernetes-preserve-unknown-fields; apiVersion/kind/metadata are kept; the order is
// prune → default → validate, so defaults are validated and a pruned field is never defaulted from the request.
import { describe, expect, it } from "vitest";
import {
  admitCustomResource,
  defaultCustomResource,
  strictDecodingMessage,
  UNKNOWN_FIELD_REASON,
} from "../../../operator/devcluster/schema/index.js";
import { admitSpec, obj, rootWith } from "./helpers.js";

const nested = {
  type: "object",
  properties: {
    a: { type: "object", properties: { b: { type: "string" } } },
    list: { type: "array", items: { type: "object", properties: { x: { type: "integer" } } } },
    free: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
    mixed: {
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
      properties: { known: { type: "object", properties: { k: { type: "string" } } } },
    },
    labels: {
      type: "object",
      additionalProperties: { type: "object", properties: { v: { type: "string" } } },
    },
  },
};

describe("pruning", () => {
  it("drops unknown fields at every depth and reports their paths", () => {
    const r = admitSpec(nested, {
      a: { b: "x", c: 1 },
      list: [{ x: 1, y: 2 }],
      zzz: true,
      labels: { k1: { v: "1", w: 2 } },
    });
    expect(r.object.spec).toEqual({ a: { b: "x" }, list: [{ x: 1 }], labels: { k1: { v: "1" } } });
    expect(r.warnings).toEqual([
      'unknown field "spec.a.c"',
      'unknown field "spec.list[0].y"',
      'unknown field "spec.zzz"',
      'unknown field "spec.labels[k1].w"',
    ]);
  });

  it("keeps everything under x-kubernetes-preserve-unknown-fields", () => {
    const r = admitSpec(nested, { free: { any: { deep: [1, { thing: true }] } } });
    expect(r.object.spec).toEqual({ free: { any: { deep: [1, { thing: true }] } } });
    expect(r.warnings).toEqual([]);
  });

  it("keeps unknown fields beside known ones under preserve, but still prunes inside known children", () => {
    const r = admitSpec(nested, { mixed: { other: 1, known: { k: "v", gone: 1 } } });
    expect(r.object.spec).toEqual({ mixed: { other: 1, known: { k: "v" } } });
    expect(r.warnings).toEqual(['unknown field "spec.mixed.known.gone"']);
  });

  it("keeps apiVersion, kind and all of metadata at the root; prunes unknown top-level fields", () => {
    const object = {
      ...obj({}),
      metadata: { name: "a", labels: { x: "y" }, annotations: { a: "b" } },
      extra: 1,
    };
    const r = admitCustomResource({ schema: rootWith({ type: "object" }), object, fieldValidation: "Warn" });
    expect(r.object).toEqual({
      apiVersion: "t.example.com/v1",
      kind: "Thing",
      metadata: object.metadata,
      spec: {},
    });
    expect(r.warnings).toEqual(['unknown field "extra"']);
  });

  it("Strict: unknown fields become causes only (decoding fails before validation)", () => {
    const r = admitSpec(
      { type: "object", properties: { n: { type: "integer", minimum: 5 } } },
      { n: 1, bogus: 2 },
      undefined,
      "Strict",
    );
    expect(r.causes).toEqual([
      { reason: UNKNOWN_FIELD_REASON, field: "spec.bogus", message: 'unknown field "spec.bogus"' },
    ]);
    expect(strictDecodingMessage(r.causes)).toBe('strict decoding error: unknown field "spec.bogus"');
  });

  it("Warn: unknown fields become warnings and validation still runs", () => {
    const r = admitSpec(
      { type: "object", properties: { n: { type: "integer", minimum: 5 } } },
      { n: 1, bogus: 2 },
      undefined,
      "Warn",
    );
    expect(r.warnings).toEqual(['unknown field "spec.bogus"']);
    expect(r.causes.map((c) => c.field)).toEqual(["spec.n"]);
  });

  it("Ignore: unknown fields are pruned silently", () => {
    const r = admitSpec(nested, { zzz: 1 }, undefined, "Ignore");
    expect(r.warnings).toEqual([]);
    expect(r.causes).toEqual([]);
    expect(r.object.spec).toEqual({});
  });

  it("keeps nested apiVersion/kind/metadata in x-kubernetes-embedded-resource nodes", () => {
    const schema = {
      type: "object",
      properties: {
        template: {
          type: "object",
          "x-kubernetes-embedded-resource": true,
          properties: { spec: { type: "object", properties: {} } },
        },
      },
    };
    const r = admitSpec(schema, {
      template: { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { x: 1 }, y: 2 },
    });
    expect(r.object.spec).toEqual({
      template: { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: {} },
    });
  });

  it("does not modify the caller's object", () => {
    const input = { a: { b: "x", c: 1 } };
    admitSpec(nested, input);
    expect(input).toEqual({ a: { b: "x", c: 1 } });
  });
});

const defaulted = {
  type: "object",
  properties: {
    mode: { type: "string", default: "fast", enum: ["fast", "safe"] },
    retry: {
      type: "object",
      properties: {
        attempts: { type: "integer", default: 3 },
        backoff: { type: "object", default: {}, properties: { base: { type: "string", default: "100ms" } } },
      },
    },
    limits: { type: "object", properties: { rps: { type: "integer", default: 10 } } },
    items: { type: "array", items: { type: "object", properties: { w: { type: "integer", default: 1 } } } },
    nullable: { type: "string", nullable: true, default: "d" },
  },
};

describe("defaulting", () => {
  it("fills missing fields, including inside parents that exist and defaults that create parents", () => {
    const r = admitSpec(defaulted, { retry: {}, items: [{}, { w: 5 }] });
    expect(r.object.spec).toEqual({
      mode: "fast",
      retry: { attempts: 3, backoff: { base: "100ms" } },
      items: [{ w: 1 }, { w: 5 }],
      nullable: "d",
    });
    expect(r.causes).toEqual([]);
  });

  it("never creates a parent that has no default of its own", () => {
    const r = admitSpec(defaulted, {});
    expect(r.object.spec).not.toHaveProperty("retry");
    expect(r.object.spec).not.toHaveProperty("limits");
  });

  it("does not override values that are present", () => {
    const r = admitSpec(defaulted, { mode: "safe", retry: { attempts: 0 } });
    expect(r.object.spec).toMatchObject({ mode: "safe", retry: { attempts: 0 } });
  });

  it("replaces null in a non-nullable field by the default, keeps null where nullable", () => {
    const r = admitSpec(defaulted, { mode: null, nullable: null });
    expect(r.object.spec).toMatchObject({ mode: "fast", nullable: null });
    expect(r.causes).toEqual([]);
  });

  it("drops null in a non-nullable field without a default (no type error)", () => {
    const r = admitSpec({ type: "object", properties: { a: { type: "string" } } }, { a: null });
    expect(r.object.spec).toEqual({});
    expect(r.causes).toEqual([]);
  });

  it("order: prune before default (an unknown field is not kept because a default exists elsewhere)", () => {
    const r = admitSpec(defaulted, { retry: { attempts: 2, bogus: 1 } });
    expect(r.object.spec).toMatchObject({ retry: { attempts: 2, backoff: { base: "100ms" } } });
    expect((r.object.spec as { retry: Record<string, unknown> }).retry).not.toHaveProperty("bogus");
  });

  it("order: default before validate (a defaulted value satisfies required)", () => {
    const schema = {
      type: "object",
      required: ["mode"],
      properties: { mode: { type: "string", default: "fast" } },
    };
    expect(admitSpec(schema, {}).causes).toEqual([]);
  });

  it("order: defaults are validated like any other value", () => {
    const schema = { type: "object", properties: { n: { type: "integer", default: 0, minimum: 1 } } };
    expect(admitSpec(schema, {}).causes.map((c) => c.field)).toEqual(["spec.n"]);
  });
});

describe("defaultCustomResource (defaulting on read)", () => {
  it("applies defaults without pruning or mutating the input", () => {
    const stored = obj({ retry: {}, extra: 1 });
    const out = defaultCustomResource(rootWith(defaulted), stored);
    expect(out.spec).toMatchObject({ mode: "fast", retry: { attempts: 3 }, extra: 1 });
    expect(stored.spec).toEqual({ retry: {}, extra: 1 });
  });
});
