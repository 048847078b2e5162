// The generated ResiliencePolicy CRD (crds/, from the zod schema) against the schema engine: it must pass
// validateCrd, every example in examples/ must be admitted cleanly under Strict, and a broken policy must be
// rejected with the field the CRD's CEL rule names.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { admitCustomResource, validateCrd } from "../../../operator/devcluster/schema/index.js";

const root = join(import.meta.dirname, "../../..");
const crdPath = join(root, "crds/resilience.bulwark.dev_resiliencepolicies.yaml");
const examplesDir = join(root, "examples");

function loadYaml(path: string): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(path, "utf8"))
    .map((d) => d.toJS() as unknown)
    .filter((d): d is Record<string, unknown> => typeof d === "object" && d !== null);
}

const crd = existsSync(crdPath) ? loadYaml(crdPath)[0] : undefined;
const schema = (() => {
  const versions = (
    crd?.spec as {
      versions?: Array<{ name: string; schema?: { openAPIV3Schema?: Record<string, unknown> } }>;
    }
  )?.versions;
  return versions?.find((v) => v.name === "v1alpha1")?.schema?.openAPIV3Schema;
})();

const examples: Array<[string, Record<string, unknown>]> = existsSync(examplesDir)
  ? readdirSync(examplesDir)
      .filter((f) => /\.ya?ml$/.test(f))
      .flatMap((f) =>
        loadYaml(join(examplesDir, f)).map((d, i): [string, Record<string, unknown>] => [`${f}#${i}`, d]),
      )
      .filter(([, d]) => d.kind === "ResiliencePolicy")
  : [];

function policy(spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: { name: "checkout", namespace: "shop" },
    spec,
  };
}

describe.skipIf(!schema)("ResiliencePolicy CRD", () => {
  const s = schema ?? {};

  it("passes validateCrd (structural, rules compile)", () => {
    expect(validateCrd(crd ?? {})).toEqual([]);
  });

  it("admits a minimal policy and applies its defaults", () => {
    const r = admitCustomResource({
      schema: s,
      object: policy({
        selector: {},
        upstreams: [{ name: "payments", host: "payments.shop.svc", port: 8080 }],
      }),
      fieldValidation: "Strict",
    });
    expect(r.causes).toEqual([]);
    expect(r.object.spec).toMatchObject({
      mode: "enforce",
      upstreams: [{ name: "payments", protocol: "http" }],
    });
  });

  it("rejects backoff.max below backoff.base at spec.upstreams[0].retry.backoff.max", () => {
    const r = admitCustomResource({
      schema: s,
      object: policy({
        selector: {},
        upstreams: [
          {
            name: "payments",
            host: "payments.shop.svc",
            port: 8080,
            retry: { backoff: { base: "1s", max: "10ms" } },
          },
        ],
      }),
      fieldValidation: "Strict",
    });
    expect(r.causes.map((c) => [c.reason, c.field])).toEqual([
      ["FieldValueInvalid", "spec.upstreams[0].retry.backoff.max"],
    ]);
  });

  it.skipIf(!examples.some(([n]) => n.startsWith("http-client-retries-breaker")))(
    "rejects examples/http-client-retries-breaker broken (backoff.max < base, count window of 0) at the rules' fields",
    () => {
      const [, doc] = examples.find(([n]) => n.startsWith("http-client-retries-breaker")) ?? ["", {}];
      const broken = structuredClone(doc) as {
        spec: { upstreams: Array<Record<string, Record<string, unknown>>> };
      };
      const up = broken.spec.upstreams[0]!;
      (up.retry!.backoff as Record<string, unknown>).max = "1ms";
      (up.circuitBreaker!.failureRate as Record<string, unknown>).window = { type: "count", size: 0 };
      const r = admitCustomResource({ schema: s, object: broken, fieldValidation: "Strict" });
      expect(r.causes.map((c) => [c.reason, c.field])).toEqual(
        expect.arrayContaining([
          ["FieldValueInvalid", "spec.upstreams[0].retry.backoff.max"],
          ["FieldValueInvalid", "spec.upstreams[0].circuitBreaker.failureRate.window.size"],
        ]),
      );
    },
  );

  it("rejects an unknown field under Strict with its path", () => {
    const r = admitCustomResource({
      schema: s,
      object: policy({ selector: {}, upstreams: [{ name: "p", host: "p.svc", port: 1, retires: 3 }] }),
      fieldValidation: "Strict",
    });
    expect(r.causes.map((c) => c.field)).toEqual(["spec.upstreams[0].retires"]);
  });

  it("rejects a missing required field", () => {
    const r = admitCustomResource({ schema: s, object: policy({}) });
    expect(r.causes.map((c) => [c.reason, c.field])).toContainEqual(["FieldValueRequired", "spec.selector"]);
  });

  it
    .skipIf(examples.length === 0)
    .each(examples.length > 0 ? examples : [["none", {}] as [string, Record<string, unknown>]])(
    "admits examples/%s cleanly",
    (_name, doc) => {
      const r = admitCustomResource({ schema: s, object: doc, fieldValidation: "Strict" });
      expect(r.causes).toEqual([]);
      expect(r.warnings).toEqual([]);
    },
  );
});
