// The seam between the control loop and config distribution. The reconciler says what each pod should run;
// the distributor gets it to the pod's agent (debounced, versioned, ACK/NACK) and tells the reconciler how
// far each pod has got. Neither side knows how the other works: the loop is tested with an in-memory
// distributor, distribution with a scripted desired state.
import type { SidecarConfig } from "../api/sidecar-config.js";

/** Where one pod's agent stands with respect to the config the operator wants it to run. */
export interface PodPropagation {
  /** An agent for this pod holds an authenticated connection now. */
  readonly connected: boolean;
  /** The version the operator wants the pod to run (undefined: none set). */
  readonly desiredVersion?: string;
  /** The last version the agent acknowledged (applied). */
  readonly ackedVersion?: string;
  /** The last version the agent rejected, and why (the agent keeps its previous config). */
  readonly rejected?: { readonly version: string; readonly reason: string };
}

export interface ConfigDistributor {
  /**
   * The config a pod's agent should run; `undefined` withdraws every rule (the agent gets the empty,
   * pass-through config). Cheap and idempotent: setting the same version again pushes nothing.
   */
  setDesired(pod: string, config: SidecarConfig | undefined): void;
  /** Propagation state of one pod (namespace/name). */
  propagation(pod: string): PodPropagation;
  /** Called with a pod key whenever its propagation changes (ACK, NACK, connect, disconnect). */
  onChange(listener: (pod: string) => void): () => void;
}
