// Drift check of the committed observability artifacts (the chart's dashboard JSON and rules file),
// alongside the CRD drift check: run `npx tsx operator/observability/generate.ts` when this fails.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkFiles, generatedFiles } from "../../operator/observability/generate.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

describe("generated observability files", () => {
  it("the committed dashboard and rules file equal freshly generated output", () => {
    expect(checkFiles(ROOT)).toEqual([]);
  });

  it("generation is deterministic", () => {
    expect([...generatedFiles()]).toEqual([...generatedFiles()]);
  });
});
