// The compiler's view of a policy: the validated, defaulted spec plus the identity precedence needs.
import type { ResiliencePolicySpec } from "../api/resilience-policy.js";

export interface CompilablePolicy {
  /** namespace/name */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  /** metadata.creationTimestamp (RFC 3339, so lexical order is time order); older wins ties. */
  readonly createdAt: string;
  readonly spec: ResiliencePolicySpec;
}

/** A validated ResiliencePolicy resource → the compiler's view (namespace defaults to `default`, as kubectl's). */
export function compilablePolicy(resource: {
  metadata: { name: string; namespace?: string | undefined; creationTimestamp?: unknown };
  spec: ResiliencePolicySpec;
}): CompilablePolicy {
  const namespace = resource.metadata.namespace ?? "default";
  const created = resource.metadata.creationTimestamp;
  return {
    key: `${namespace}/${resource.metadata.name}`,
    namespace,
    name: resource.metadata.name,
    // A policy not yet stored has no timestamp; it sorts as newest ("~" orders after any RFC 3339 string).
    createdAt: typeof created === "string" ? created : "~",
    spec: resource.spec,
  };
}
