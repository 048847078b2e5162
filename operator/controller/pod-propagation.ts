/**
 * How far a policy's config has got to its pods: each selected pod is acked (its agent applied the
 * pod's current config version), rejected (its agent NACKed that version; it keeps its previous
 * config) or pending (not answered yet, or no agent connected). Pure: the distributor's view of a
 * pod and the version the compiler wants are passed in.
 */
import type { PodPropagation } from "../distribution/config-distributor.js";

export type PodPropagationState = "acked" | "pending" | "rejected";

export interface PodRejection {
  readonly pod: string;
  readonly version: string;
  readonly reason: string;
}

export interface PropagationSummary {
  readonly selected: number;
  readonly acked: number;
  readonly pending: number;
  readonly rejected: number;
  /** Pending pods whose agent is not connected (a subset of `pending`). */
  readonly disconnected: number;
  /** The rejections of current versions, pods in order (for the condition's message). */
  readonly rejections: readonly PodRejection[];
}

/** One pod: `version` is the config version the compiler wants it to run. */
export function podPropagationState(p: PodPropagation, version: string): PodPropagationState {
  if (p.ackedVersion === version) return "acked";
  if (p.rejected?.version === version) return "rejected";
  return "pending";
}

/**
 * Summarises the selected pods. `versionOf(pod)` is the pod's current config version (undefined
 * when the compiler has none for it, e.g. between a pod's deletion and its removal from the
 * selection: counted pending).
 */
export function summarisePropagation(
  pods: readonly string[],
  versionOf: (pod: string) => string | undefined,
  propagation: (pod: string) => PodPropagation,
): PropagationSummary {
  let acked = 0;
  let pending = 0;
  let rejected = 0;
  let disconnected = 0;
  const rejections: PodRejection[] = [];
  for (const pod of pods) {
    const version = versionOf(pod);
    const p = propagation(pod);
    const state = version === undefined ? "pending" : podPropagationState(p, version);
    if (state === "acked") acked++;
    else if (state === "rejected") {
      rejected++;
      if (p.rejected) rejections.push({ pod, version: p.rejected.version, reason: p.rejected.reason });
    } else {
      pending++;
      if (!p.connected) disconnected++;
    }
  }
  return { selected: pods.length, acked, pending, rejected, disconnected, rejections };
}

/**
 * True when a pod no longer needs anything from a withdrawn policy: its agent acknowledged the
 * config it should run now (the withdrawal), or it has no agent connected (it gets the current
 * config when it connects), or nothing is desired for it any more.
 */
export function withdrawalSettled(p: PodPropagation): boolean {
  if (!p.connected) return true;
  if (p.desiredVersion === undefined) return true;
  return p.ackedVersion === p.desiredVersion || p.rejected?.version === p.desiredVersion;
}
