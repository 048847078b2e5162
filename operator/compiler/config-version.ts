// The config version: a content hash, so the same inputs give the same version on every replica and after
// every restart (agents compare versions to skip re-applying, and status shows it). Keys are sorted before
// hashing, so object construction order can never change a version.
import { createHash } from "node:crypto";

export function contentVersion(value: unknown): string {
  return createHash("sha256").update(stableJson(value)).digest("hex").slice(0, 16);
}

/** JSON with object keys sorted at every depth; `undefined` members dropped as JSON.stringify does. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
}
