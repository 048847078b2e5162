import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { yamlNestingBound } from "../../operator/devcluster/yaml-depth.js";

/** The real nesting depth of a parsed value (a scalar is 0). */
function depth(v: unknown): number {
  if (v === null || typeof v !== "object") return 0;
  const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
  return 1 + Math.max(0, ...children.map(depth));
}

const blockNested = (levels: number, indent: number) =>
  Array.from({ length: levels }, (_, i) => `${" ".repeat(i * indent)}k${i}:`).join("\n") +
  `\n${" ".repeat(levels * indent)}leaf: 1\n`;

describe("yamlNestingBound", () => {
  it("never under-counts: block maps at any indentation width, sequences, flow collections", () => {
    const texts = [
      blockNested(10, 2),
      blockNested(10, 4),
      blockNested(10, 1),
      "- - - - a\n",
      "a:\n  - b:\n      - [1, {c: [2]}]\n",
      "[[[[[[1]]]]]]",
      '{"a": {"b": {"c": [1, 2, {"d": null}]}}}',
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\n  labels: {app: web}\ndata:\n  k: v\n",
    ];
    for (const t of texts) expect(yamlNestingBound(t), t).toBeGreaterThanOrEqual(depth(parse(t)));
  });

  it("counts levels, not columns, and ignores brackets in quotes and comments", () => {
    expect(yamlNestingBound(blockNested(10, 4))).toBe(11);
    expect(yamlNestingBound(blockNested(10, 1))).toBe(11);
    expect(yamlNestingBound("a: \"[[[[{{{{\"\nb: '[[[[' # [[[[[[[[\n")).toBe(1);
    expect(yamlNestingBound("a: |\n  [[[[[[ text, not flow ]]]]]]\n")).toBeLessThanOrEqual(8);
  });

  it("sees what would overflow the parser: 3,000 levels of flow or block nesting", () => {
    expect(yamlNestingBound("[".repeat(3000) + "]".repeat(3000))).toBeGreaterThanOrEqual(3000);
    expect(yamlNestingBound(blockNested(3000, 1))).toBeGreaterThanOrEqual(3000);
    expect(yamlNestingBound("- ".repeat(3000) + "x")).toBeGreaterThanOrEqual(3000);
  });
});
