import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildCrd, structural, type SchemaNode } from "../../operator/api/crd.js";
import { DURATION_PATTERN } from "../../operator/api/duration.js";
import {
  CHART_CRD_FILE,
  CRD_FILE,
  REFERENCE_FILE,
  checkFiles,
  generatedFiles,
} from "../../operator/api/generate-crd.js";
import { ResiliencePolicySpec } from "../../operator/api/resilience-policy.js";
import { contractPolicy } from "./helpers/fixtures.js";
import { applyDefaults } from "./helpers/kube-cel.js";

const root = join(import.meta.dirname, "../..");
const crd = buildCrd();
const version = ((crd.spec as SchemaNode).versions as SchemaNode[])[0] as SchemaNode;
const top = (version.schema as SchemaNode).openAPIV3Schema as SchemaNode;
const props = top.properties as { spec: SchemaNode; status: SchemaNode };

/** Every schema node with its path. */
function nodes(node: SchemaNode, path: string): [string, SchemaNode][] {
  const out: [string, SchemaNode][] = [[path, node]];
  const isObj = (v: unknown): v is SchemaNode => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(node.properties)) {
    for (const [k, v] of Object.entries(node.properties)) out.push(...nodes(v as SchemaNode, `${path}.${k}`));
  }
  if (isObj(node.items)) out.push(...nodes(node.items, `${path}[]`));
  if (isObj(node.additionalProperties)) out.push(...nodes(node.additionalProperties, `${path}{}`));
  return out;
}

describe("the CRD", () => {
  it("has the contract's names, scope and version", () => {
    expect(crd.metadata).toMatchObject({ name: "resiliencepolicies.resilience.bulwark.dev" });
    expect(crd.spec).toMatchObject({
      group: "resilience.bulwark.dev",
      scope: "Namespaced",
      names: {
        kind: "ResiliencePolicy",
        listKind: "ResiliencePolicyList",
        plural: "resiliencepolicies",
        singular: "resiliencepolicy",
        shortNames: ["rp"],
        categories: ["bulwark"],
      },
    });
    expect(version).toMatchObject({
      name: "v1alpha1",
      served: true,
      storage: true,
      subresources: { status: {} },
    });
  });

  it("has the printer columns Ready, Pods (acked/selected), Open Breakers and Age", () => {
    const cols = version.additionalPrinterColumns as { name: string; jsonPath: string; type: string }[];
    expect(cols.map((c) => c.name)).toEqual(
      expect.arrayContaining(["Ready", "Pods", "Open Breakers", "Age", "Mode"]),
    );
    expect(cols.find((c) => c.name === "Ready")?.jsonPath).toBe(
      '.status.conditions[?(@.type=="Ready")].status',
    );
    expect(cols.find((c) => c.name === "Age")).toMatchObject({
      type: "date",
      jsonPath: ".metadata.creationTimestamp",
    });
    // Every column points at a field the schema has.
    for (const c of cols) {
      const path = c.jsonPath
        .replace(/\[\?.*?\]/, "[]")
        .split(".")
        .filter(Boolean);
      if (path[0] === "metadata") continue;
      let node: SchemaNode | undefined = top;
      for (const seg of path) {
        const name = seg.replace("[]", "");
        node = (node?.properties as Record<string, SchemaNode> | undefined)?.[name];
        if (seg.endsWith("[]")) node = node?.items as SchemaNode | undefined;
      }
      expect(node, c.jsonPath).toBeDefined();
    }
  });

  it("is structural: a type on every node, no $ref, no unions but int-or-string, no additionalProperties: false", () => {
    for (const [path, node] of nodes(top, "")) {
      expect(node.$ref, path).toBeUndefined();
      expect(node.oneOf, path).toBeUndefined();
      expect(node.allOf, path).toBeUndefined();
      expect(node.propertyNames, path).toBeUndefined();
      expect(node.additionalProperties === false, path).toBe(false);
      if (node["x-kubernetes-int-or-string"] === true) {
        expect(node.anyOf).toEqual([{ type: "integer" }, { type: "string" }]);
        expect(node.type).toBeUndefined();
      } else {
        expect(node.anyOf, path).toBeUndefined();
        expect(typeof node.type, path).toBe("string");
      }
      expect(node["x-kubernetes-preserve-unknown-fields"], path).toBeUndefined();
    }
  });

  it("describes every spec and status field, and states each schema default in the description", () => {
    for (const [path, node] of [...nodes(props.spec, "spec"), ...nodes(props.status, "status")]) {
      if (path.endsWith("[]") || path.endsWith("{}")) continue; // items and map values are described by their list
      expect(typeof node.description, path).toBe("string");
      if ("default" in node) expect(node.description, path).toMatch(/Default/);
    }
  });

  it("bounds every string and list in the spec (CEL cost), and patterns every duration", () => {
    for (const [path, node] of nodes(props.spec, "spec")) {
      if (node.type === "string" && node.enum === undefined)
        expect(node.maxLength, path).toBeTypeOf("number");
      if (node.type === "array") expect(node.maxItems, path).toBeTypeOf("number");
      if (node.type === "object" && node.additionalProperties !== undefined) {
        expect(node.maxProperties, path).toBeTypeOf("number");
      }
    }
    const durations = nodes(props.spec, "spec").filter(([, n]) => n.pattern === DURATION_PATTERN);
    expect(durations.length).toBeGreaterThanOrEqual(15);
  });

  it("keys upstreams by name and conditions by type; sets are sets", () => {
    expect(props.spec.properties).toMatchObject({
      upstreams: { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] },
    });
    expect(props.status.properties).toMatchObject({
      conditions: { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
      breakers: { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["upstream"] },
    });
    const upstream = (props.spec.properties as Record<string, SchemaNode>).upstreams?.items as SchemaNode;
    expect(upstream.required).toEqual(expect.arrayContaining(["name"]));
  });

  it("declares enums and numeric bounds", () => {
    const spec = props.spec.properties as Record<string, SchemaNode>;
    expect(spec.mode).toMatchObject({ enum: ["enforce", "shadow", "off"], default: "enforce" });
    expect(spec.priority).toMatchObject({ minimum: -1000, maximum: 1000, default: 0 });
  });

  it("applies the same defaults as zod (all but the protocol-dependent ones)", () => {
    const input = contractPolicy().spec as Record<string, unknown>;
    const upstreams = input.upstreams as Record<string, unknown>[];
    // Strip optional sub-objects so the CRD has something to default.
    delete (upstreams[0]?.retry as Record<string, unknown>).backoff;
    delete (upstreams[0]?.retry as Record<string, unknown>).budget;
    delete (upstreams[1] as Record<string, unknown>).connectTimeout;
    (input.inbound as Record<string, unknown>).healthCheck = {};
    const byCrd = applyDefaults(props.spec, input);
    const byZod = ResiliencePolicySpec.parse(input);
    expect(byCrd).toEqual(byZod);
  });

  it("rejects a union other than integer|string rather than emit a non-structural schema", () => {
    expect(() => structural({ anyOf: [{ type: "string" }, { type: "boolean" }] })).toThrow(
      /unsupported union/,
    );
  });
});

describe("generate-crd", () => {
  it("is deterministic: generating twice gives identical bytes", () => {
    const a = generatedFiles();
    const b = generatedFiles();
    expect([...a.keys()]).toEqual([CRD_FILE, CHART_CRD_FILE, REFERENCE_FILE]);
    for (const [path, content] of a) expect(b.get(path)).toBe(content);
  });

  it("writes the chart's copy identical to crds/", () => {
    const files = generatedFiles();
    expect(files.get(CHART_CRD_FILE)).toBe(files.get(CRD_FILE));
  });

  it("the committed files are up to date", () => {
    expect(checkFiles(root)).toEqual([]);
    expect(readFileSync(join(root, CRD_FILE), "utf8")).toBe(readFileSync(join(root, CHART_CRD_FILE), "utf8"));
  });

  it("the generated YAML parses back to the CRD object, quoting YAML 1.1 booleans", () => {
    const text = generatedFiles().get(CRD_FILE) ?? "";
    expect(parse(text, { version: "1.1" })).toEqual(crd);
    expect(text).toContain('"on":');
    expect(text).toContain('- "off"');
  });

  it("--check reports a stale or missing file with the first differing line", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-crd-"));
    for (const [path, content] of generatedFiles()) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(
        join(dir, path),
        path === CHART_CRD_FILE ? content.replace("plural: resiliencepolicies", "plural: x") : content,
      );
    }
    const stale = checkFiles(dir);
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatch(
      /^charts\/bulwark\/crds\/\S+: differs .* line \d+:\n\s+- committed:\s+plural: x\n\s+\+ generated:\s+plural: resiliencepolicies$/,
    );
    writeFileSync(join(dir, REFERENCE_FILE), "");
    expect(checkFiles(dir)).toHaveLength(2);
  });

  it("the API reference lists every spec object and its rules", () => {
    const doc = generatedFiles().get(REFERENCE_FILE) ?? "";
    for (const heading of [
      "spec",
      "spec.upstreams[]",
      "spec.upstreams[].retry.backoff",
      "spec.inbound.loadShedding",
      "status",
    ]) {
      expect(doc).toContain(`## \`${heading}\``);
    }
    expect(doc).toContain("must be >= base");
  });
});
