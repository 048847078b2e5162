// The compiler's view of a pod: only what selection and quotas need, free of Kubernetes client types
// (the controller converts at the edge), so the compiler stays a pure function over plain data.

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The pod's Ready condition; unready pods are still configured (they may become ready) but get no quota. */
  readonly ready: boolean;
}

export function podKey(pod: { namespace: string; name: string }): string {
  return `${pod.namespace}/${pod.name}`;
}

/** A Pod object as JSON (from the API or a file) → PodInfo. Unknown shapes give an unready pod with no labels. */
export function podInfoFromObject(obj: unknown): PodInfo {
  const o = (obj ?? {}) as {
    metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
    status?: { conditions?: { type?: string; status?: string }[] };
  };
  return {
    namespace: o.metadata?.namespace ?? "default",
    name: o.metadata?.name ?? "",
    labels: o.metadata?.labels ?? {},
    ready: o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
  };
}
