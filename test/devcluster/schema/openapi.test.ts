// The per-GV OpenAPI v3 document (kube-api-spec §2.3): kubectl apply needs a PATCH operation with the GVK as an
// object and a fieldValidation parameter; kubectl explain needs components.schemas with the GVK as an array and
// every $ref resolvable inside the document.
import { describe, expect, it } from "vitest";
import { definitionName, openApiV3ForGroupVersion } from "../../../operator/devcluster/schema/index.js";

const rpSchema = {
  type: "object",
  description: "A policy.",
  properties: {
    metadata: { type: "object" },
    spec: { type: "object", description: "Desired behaviour.", properties: { mode: { type: "string" } } },
  },
};
const crd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "resiliencepolicies.resilience.bulwark.dev" },
  spec: {
    group: "resilience.bulwark.dev",
    scope: "Namespaced",
    names: {
      plural: "resiliencepolicies",
      singular: "resiliencepolicy",
      kind: "ResiliencePolicy",
      listKind: "ResiliencePolicyList",
    },
    versions: [
      {
        name: "v1alpha1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: rpSchema,
        },
      },
      { name: "v1beta1", served: false, storage: false, schema: { openAPIV3Schema: { type: "object" } } },
    ],
  },
};
const clusterCrd = {
  ...crd,
  spec: {
    ...crd.spec,
    scope: "Cluster",
    names: { plural: "globals", kind: "Global" },
    versions: [crd.spec.versions[0]],
  },
};
const otherGroup = { ...crd, spec: { ...crd.spec, group: "other.example.com" } };

function collectRefs(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => collectRefs(x, out));
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === "$ref" && typeof x === "string") out.push(x);
      else collectRefs(x, out);
    }
  }
  return out;
}

describe("openApiV3ForGroupVersion", () => {
  const doc = openApiV3ForGroupVersion("resilience.bulwark.dev", "v1alpha1", [crd, clusterCrd, otherGroup]);
  const schemas = (doc.components as { schemas: Record<string, Record<string, unknown>> }).schemas;
  const paths = doc.paths as Record<string, Record<string, Record<string, unknown>>>;

  it("names schemas by reverse-domain group, version and kind", () => {
    expect(definitionName("resilience.bulwark.dev", "v1alpha1", "ResiliencePolicy")).toBe(
      "dev.bulwark.resilience.v1alpha1.ResiliencePolicy",
    );
    expect(Object.keys(schemas)).toEqual(
      expect.arrayContaining([
        "dev.bulwark.resilience.v1alpha1.ResiliencePolicy",
        "dev.bulwark.resilience.v1alpha1.ResiliencePolicyList",
        "dev.bulwark.resilience.v1alpha1.Global",
        "dev.bulwark.resilience.v1alpha1.GlobalList",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
      ]),
    );
    expect(doc.openapi).toBe("3.0.0");
  });

  it("embeds the CRD schema with the GVK array and metadata as an ObjectMeta $ref (what explain needs)", () => {
    const rp = schemas["dev.bulwark.resilience.v1alpha1.ResiliencePolicy"]!;
    expect(rp["x-kubernetes-group-version-kind"]).toEqual([
      { group: "resilience.bulwark.dev", kind: "ResiliencePolicy", version: "v1alpha1" },
    ]);
    expect(rp.description).toBe("A policy.");
    const props = rp.properties as Record<string, Record<string, unknown>>;
    expect(props.spec).toEqual(rpSchema.properties.spec);
    expect(props.metadata?.allOf).toEqual([
      { $ref: "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" },
    ]);
    expect(props.apiVersion?.type).toBe("string");
    expect(props.kind?.type).toBe("string");
    const list = schemas["dev.bulwark.resilience.v1alpha1.ResiliencePolicyList"]!;
    expect(list["x-kubernetes-group-version-kind"]).toEqual([
      { group: "resilience.bulwark.dev", kind: "ResiliencePolicyList", version: "v1alpha1" },
    ]);
  });

  it("does not mutate the CRD", () => {
    expect(rpSchema.properties.metadata).toEqual({ type: "object" });
  });

  it("has a PATCH operation with the GVK object and a fieldValidation parameter (what apply needs)", () => {
    const item =
      paths["/apis/resilience.bulwark.dev/v1alpha1/namespaces/{namespace}/resiliencepolicies/{name}"]!;
    const patch = item.patch!;
    expect(patch["x-kubernetes-group-version-kind"]).toEqual({
      group: "resilience.bulwark.dev",
      version: "v1alpha1",
      kind: "ResiliencePolicy",
    });
    expect((patch.parameters as Array<{ name: string }>).map((p) => p.name)).toContain("fieldValidation");
    expect(patch).not.toHaveProperty("requestBody");
    expect(
      paths["/apis/resilience.bulwark.dev/v1alpha1/namespaces/{namespace}/resiliencepolicies/{name}/status"]
        ?.patch,
    ).toBeDefined();
    expect(paths["/apis/resilience.bulwark.dev/v1alpha1/resiliencepolicies"]?.get).toBeDefined();
    expect(
      paths["/apis/resilience.bulwark.dev/v1alpha1/globals/{name}"]?.patch?.[
        "x-kubernetes-group-version-kind"
      ],
    ).toEqual({
      group: "resilience.bulwark.dev",
      version: "v1alpha1",
      kind: "Global",
    });
  });

  it("resolves every $ref inside the document", () => {
    for (const r of collectRefs(doc)) {
      expect(r.startsWith("#/components/schemas/")).toBe(true);
      expect(schemas).toHaveProperty([r.slice("#/components/schemas/".length)]);
    }
  });

  it("leaves out versions that are not served and other groups", () => {
    const beta = openApiV3ForGroupVersion("resilience.bulwark.dev", "v1beta1", [crd]);
    expect(Object.keys(beta.paths as object)).toEqual([]);
    expect(Object.keys(schemas).some((k) => k.startsWith("com.example.other"))).toBe(false);
  });
});
