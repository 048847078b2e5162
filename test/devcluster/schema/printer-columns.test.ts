// Server-side Tables for CRs (apiextensions table convertor; kube-api-spec §9): Name first, printer columns in
// order (a lone Age when none are defined), cells typed by column type, null (kubectl prints <none>) for no match,
// dates as apimachinery HumanDuration ages.
import { describe, expect, it } from "vitest";
import {
  buildPrinterTable,
  humanDuration,
  printerColumnsTable,
} from "../../../operator/devcluster/schema/index.js";
import { findJsonPath } from "../../../operator/devcluster/schema/jsonpath.js";

const NOW = new Date("2026-01-10T12:00:00Z");
const columns = [
  { name: "Mode", type: "string", jsonPath: ".spec.mode", description: "enforce, shadow or off" },
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: "Replicas", type: "integer", jsonPath: ".spec.replicas" },
  { name: "Ratio", type: "number", jsonPath: ".status.ratio" },
  { name: "Paused", type: "boolean", jsonPath: ".spec.paused", priority: 1 },
  { name: "First", type: "string", jsonPath: ".spec.hosts[0]" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];
const object = {
  apiVersion: "x.example.com/v1",
  kind: "Thing",
  metadata: { name: "one", namespace: "ns", creationTimestamp: "2026-01-10T11:55:00Z", uid: "u1" },
  spec: { mode: "enforce", replicas: 3.7, paused: false, hosts: ["a", "b"] },
  status: {
    ratio: 0.25,
    conditions: [
      { type: "Accepted", status: "True" },
      { type: "Ready", status: "False" },
    ],
  },
};

describe("printerColumnsTable", () => {
  it("builds a meta.k8s.io/v1 Table with Name first and typed cells", () => {
    const t = buildPrinterTable({ columns, objects: [object], includeObject: "Metadata", now: () => NOW });
    expect(t).toMatchObject({ kind: "Table", apiVersion: "meta.k8s.io/v1", metadata: {} });
    const defs = t.columnDefinitions as Array<Record<string, unknown>>;
    expect(defs.map((d) => [d.name, d.type, d.format, d.priority])).toEqual([
      ["Name", "string", "name", 0],
      ["Mode", "string", "", 0],
      ["Ready", "string", "", 0],
      ["Replicas", "integer", "", 0],
      ["Ratio", "number", "", 0],
      ["Paused", "boolean", "", 1],
      ["First", "string", "", 0],
      ["Age", "date", "", 0],
    ]);
    expect(defs[1]?.description).toBe("enforce, shadow or off");
    const rows = t.rows as Array<{ cells: unknown[]; object?: unknown }>;
    expect(rows[0]?.cells).toEqual(["one", "enforce", "False", 3, 0.25, false, "a", "5m"]);
    expect(rows[0]?.object).toEqual({
      kind: "PartialObjectMetadata",
      apiVersion: "meta.k8s.io/v1",
      metadata: object.metadata,
    });
  });

  it("gives null for missing values (kubectl prints <none>) and <invalid> for a bad date", () => {
    const bare = { metadata: { name: "two", creationTimestamp: "not a time" } };
    const t = buildPrinterTable({ columns, objects: [bare], includeObject: "None", now: () => NOW });
    const rows = t.rows as Array<Record<string, unknown>>;
    expect(rows[0]?.cells).toEqual(["two", null, null, null, null, null, null, "<invalid>"]);
    expect(rows[0]).not.toHaveProperty("object");
  });

  it("gives null when the value has the wrong type for a typed column", () => {
    const t = buildPrinterTable({
      columns: [{ name: "N", type: "integer", jsonPath: ".spec.mode" }],
      objects: [object],
      includeObject: "None",
      now: () => NOW,
    });
    expect((t.rows as Array<{ cells: unknown[] }>)[0]?.cells).toEqual(["one", null]);
  });

  it("includes the whole object for includeObject=Object", () => {
    const t = printerColumnsTable(columns, [object], "Object");
    expect((t.rows as Array<{ object: unknown }>)[0]?.object).toEqual(object);
  });

  it("adds a single Age column when the CRD defines none", () => {
    const t = buildPrinterTable({ columns: [], objects: [object], includeObject: "None", now: () => NOW });
    expect((t.columnDefinitions as Array<{ name: string }>).map((d) => d.name)).toEqual(["Name", "Age"]);
    expect((t.rows as Array<{ cells: unknown[] }>)[0]?.cells).toEqual(["one", "5m"]);
  });
});

describe("humanDuration (apimachinery HumanDuration)", () => {
  const s = 1000;
  const m = 60 * s;
  const h = 60 * m;
  const d = 24 * h;
  it.each([
    [-500, "0s"],
    [-3 * s, "<invalid>"],
    [0, "0s"],
    [45 * s, "45s"],
    [119 * s, "119s"],
    [5 * m, "5m"],
    [5 * m + 10 * s, "5m10s"],
    [45 * m, "45m"],
    [179 * m, "179m"],
    [3 * h, "3h"],
    [5 * h + 30 * m, "5h30m"],
    [30 * h, "30h"],
    [2 * d, "2d"],
    [3 * d + 4 * h, "3d4h"],
    [100 * d, "100d"],
    [3 * 365 * d + 10 * d, "3y10d"],
    [9 * 365 * d, "9y"],
  ])("%d ms → %s", (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

describe("printer-column JSONPath", () => {
  it.each([
    [".spec.mode", ["enforce"]],
    ["{.spec.hosts[1]}", ["b"]],
    [".spec.hosts[-1]", ["b"]],
    [".spec.hosts[*]", ["a", "b"]],
    [".spec['mode']", ["enforce"]],
    [".status.conditions[?(@.type=='Accepted')].status", ["True"]],
    [".status.conditions[?(@.type!='Accepted')].type", ["Ready"]],
    [".spec.missing", []],
    [".spec.hosts[5]", []],
  ])("%s", (path, want) => {
    expect(findJsonPath(object, path)).toEqual(want);
  });
});
