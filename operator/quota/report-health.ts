// A pod's health from its agent's reports: the health checks of the app and the pod's readiness say
// healthy or unhealthy at once; the share of inbound requests that failed says degraded — but only once
// enough requests were seen. Like Envoy's outlier detection (`success_rate_request_volume`), a report with
// too few requests is no verdict on errors: its counts are carried into the next report's, so a quiet pod
// is judged over a longer stretch instead of being called good (or bad) on three requests. Pure.
import type { HealthState, Observation } from "./pod-health.js";
import { classify, INITIAL_HEALTH, observe } from "./pod-health.js";
import type { LoadReport } from "./cluster-round.js";

/** Requests needed before the error ratio counts (2 failures out of 3 is noise, not a degraded pod). */
export const MIN_REQUESTS_FOR_ERROR_RATIO = 10;

/** What the allocator keeps per pod between reports. */
export interface PodState {
  readonly health: HealthState;
  /** Inbound requests not yet judged (fewer than MIN_REQUESTS_FOR_ERROR_RATIO so far). */
  readonly completed: number;
  readonly failed: number;
}

export const INITIAL_POD_STATE: PodState = { health: INITIAL_HEALTH, completed: 0, failed: 0 };

/** Folds one report (plus the pod's readiness from the API) into the pod's state, with hysteresis. */
export function foldReport(state: PodState, report: LoadReport, ready: boolean): PodState {
  const completed = state.completed + (report.inbound?.completedSinceLastReport ?? 0);
  const failed = state.failed + (report.inbound?.failedSinceLastReport ?? 0);
  const checks = classify({ ready, appHealth: report.appHealth ?? "unknown" });
  if (checks === "bad") return { health: observe(state.health, "bad"), completed, failed };
  if (completed >= MIN_REQUESTS_FOR_ERROR_RATIO) {
    const verdict: Observation = classify({
      ready,
      appHealth: report.appHealth ?? "unknown",
      errorRatio: failed / completed,
    });
    return { health: observe(state.health, verdict), completed: 0, failed: 0 };
  }
  // Too few requests to judge errors: only the checks are news. They matter when the pod is (or is turning)
  // unhealthy — an unhealthy pod gets no share and so little traffic, and its recovery must not wait for it.
  const news = state.health.health === "unhealthy" || state.health.toward === "unhealthy";
  return { health: news ? observe(state.health, checks) : state.health, completed, failed };
}
