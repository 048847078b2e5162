/**
 * The finalizer that keeps a deleted policy until its withdrawal reached the agents (the
 * dot-i/Pepr pattern): added on first sight, removed once cleanup is done. Pure helpers; the
 * reconciler sends the patches. Patches carry the resourceVersion read, so a concurrent change to
 * the finalizer list fails with 409 instead of being overwritten.
 */

/** Domain-qualified, as cert-manager's UseDomainQualifiedFinalizer recommends. */
export const POLICY_FINALIZER = "resilience.bulwark.dev/finalizer";

interface Meta {
  readonly resourceVersion?: string;
  readonly finalizers?: readonly string[];
  readonly deletionTimestamp?: string;
}

export function hasFinalizer(meta: Meta | undefined, finalizer = POLICY_FINALIZER): boolean {
  return meta?.finalizers?.includes(finalizer) ?? false;
}

export function isBeingDeleted(meta: Meta | undefined): boolean {
  return typeof meta?.deletionTimestamp === "string" && meta.deletionTimestamp !== "";
}

/** A merge patch adding `finalizer`, conditional on the resourceVersion read. */
export function addFinalizerPatch(meta: Meta | undefined, finalizer = POLICY_FINALIZER): object {
  return {
    metadata: {
      ...(meta?.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
      finalizers: [...(meta?.finalizers ?? []).filter((f) => f !== finalizer), finalizer],
    },
  };
}

/** A merge patch removing `finalizer` (others kept), conditional on the resourceVersion read. */
export function removeFinalizerPatch(meta: Meta | undefined, finalizer = POLICY_FINALIZER): object {
  return {
    metadata: {
      ...(meta?.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
      finalizers: (meta?.finalizers ?? []).filter((f) => f !== finalizer),
    },
  };
}
