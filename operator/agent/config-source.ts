// Where the agent's configs come from: a file (standalone, this issue) or the operator's distribution
// stream (the distribution issue). Both implement ConfigSource, so the agent neither knows nor cares.
//
// The exchange is xDS-shaped: the source hands the agent each candidate config; the agent validates and
// applies it whole or not at all and answers synchronously with a verdict (ACK with the version now in force,
// or NACK with the problems and the version that keeps serving); the source relays that upstream if it has
// an upstream. Separately, the agent pushes a periodic status report (breakers, health, load) that the
// operator's allocator turns into quotas and shedding levels.
import type { ConfigProblem } from "../api/sidecar-config.js";

/** A config as the source received it, not yet validated. */
export type ConfigCandidate =
  | {
      /** Where it came from, for logs and /config: a file path, an operator URL, `state-dir`. */
      readonly origin: string;
      /** The parsed document (YAML/JSON already decoded); validated by the agent with parseSidecarConfig. */
      readonly document: unknown;
    }
  | {
      readonly origin: string;
      /** The bytes could not even be decoded (bad YAML, unreadable file, oversize): a NACK without a document. */
      readonly decodeError: string;
    };

/** What the agent did with a candidate. */
export type ConfigVerdict =
  | {
      readonly accepted: true;
      /** The version now in force (the candidate's). */
      readonly version: string;
      /** True when the candidate equalled the config already in force (nothing changed). */
      readonly unchanged: boolean;
    }
  | {
      readonly accepted: false;
      /** The candidate's version when it had a readable one. */
      readonly rejectedVersion: string | undefined;
      /** The version that keeps serving, if any. */
      readonly activeVersion: string | undefined;
      /** Every problem found, `path: message`. */
      readonly problems: readonly ConfigProblem[];
    };

/** Breaker state of one upstream in a report; `half-open` spelled as the primitives spell it. */
export interface UpstreamReport {
  readonly upstream: string;
  readonly policy: string;
  readonly breaker: "closed" | "open" | "half-open" | "none";
  readonly inflight: number;
  readonly queued: number;
}

/** What the agent tells its source every few seconds (the operator uses it for quotas and shedding). */
export interface AgentReport {
  readonly pod: { readonly namespace: string | undefined; readonly name: string | undefined };
  /** Version in force, undefined before the first accepted config. */
  readonly activeVersion: string | undefined;
  /** The app's health from the configured checks: `unknown` until enough checks ran, or with no check. */
  readonly appHealth: "healthy" | "unhealthy" | "unknown";
  readonly upstreams: readonly UpstreamReport[];
  readonly inbound:
    | {
        readonly inflight: number;
        readonly concurrencyLimit: number | undefined;
        readonly sheddingLevel: number;
        /** Requests shed since the previous report. */
        readonly shedSinceLastReport: number;
        /** Admitted requests that ended since the previous report, and those that failed (5xx, errors). */
        readonly completedSinceLastReport?: number;
        readonly failedSinceLastReport?: number;
      }
    | undefined;
  /** Wall-clock time of the report (ms since the epoch). */
  readonly at: number;
}

/** A supplier of configs. */
export interface ConfigSource {
  /** Short human name for logs: `file:/etc/bulwark/config.yaml`, `operator:https://…`. */
  readonly name: string;
  /**
   * Starts delivering: `onConfig` is called with the current config as soon as one is known, then with every
   * change, never concurrently. The agent's answer is the ACK/NACK. Call at most once per source.
   */
  subscribe(onConfig: (candidate: ConfigCandidate) => ConfigVerdict): void;
  /** Hands the latest status report to the source (which may batch, drop or forward it). Never throws. */
  report(report: AgentReport): void;
  /** Stops watching; no `onConfig` call happens after it resolves. */
  close(): Promise<void>;
}
