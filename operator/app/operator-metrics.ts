/**
 * Binds the controller's and the reconciler's metric callbacks to the operator's registry
 * (`createMetrics("operator")`, the contract's names). Stale label sets — a deleted policy, a pod
 * that left a policy — are removed, so the series a dashboard sees are the live ones.
 */
import type { QuotaShare } from "../compiler/policy-compiler.js";
import type { ControllerMetrics } from "../controller/controller.js";
import type { PolicyReconcilerMetrics } from "../controller/policy-reconciler.js";
import type { Metrics } from "../observability/registry.js";

export type OperatorMetrics = Metrics<"operator">;

export function controllerMetrics(m: OperatorMetrics): ControllerMetrics {
  for (const result of ["success", "error", "requeue"]) m.reconcile.inc({ result }, 0);
  return {
    reconcileFinished(result, seconds) {
      m.reconcile.inc({ result });
      m.reconcileDuration.observe(seconds);
    },
    workqueueDepth(depth) {
      m.workqueueDepth.set(depth);
    },
  };
}

export function reconcilerMetrics(m: OperatorMetrics): PolicyReconcilerMetrics {
  const breakerLabels = new Map<
    string,
    { namespace: string; policy: string; upstream: string; state: string }[]
  >();
  const quotaLabels = new Map<string, { namespace: string; policy: string; pod: string; kind: string }[]>();
  return {
    policyPods(namespace, policy, counts) {
      for (const state of ["acked", "pending", "rejected"] as const) {
        if (counts) m.policyPods.set({ namespace, policy, state }, counts[state]);
        else m.policyPods.remove({ namespace, policy, state });
      }
    },
    quotas(namespace, policy, quotas: readonly QuotaShare[] | undefined) {
      const key = `${namespace}/${policy}`;
      for (const labels of quotaLabels.get(key) ?? []) m.quotaAllocated.remove(labels);
      quotaLabels.delete(key);
      if (!quotas || quotas.length === 0) return;
      // A pod's shares over several rules are summed per kind: the metric has no rule label.
      const sums = new Map<string, { concurrency: number; rate: number; c: boolean; r: boolean }>();
      for (const q of quotas) {
        const pod = q.pod.slice(q.pod.indexOf("/") + 1);
        const s = sums.get(pod) ?? { concurrency: 0, rate: 0, c: false, r: false };
        if (q.concurrency !== undefined) {
          s.concurrency += q.concurrency;
          s.c = true;
        }
        if (q.requestsPerSecond !== undefined) {
          s.rate += q.requestsPerSecond;
          s.r = true;
        }
        sums.set(pod, s);
      }
      const set: { namespace: string; policy: string; pod: string; kind: string }[] = [];
      for (const [pod, s] of sums) {
        if (s.c) set.push({ namespace, policy, pod, kind: "concurrency" });
        if (s.c) m.quotaAllocated.set({ namespace, policy, pod, kind: "concurrency" }, s.concurrency);
        if (s.r) set.push({ namespace, policy, pod, kind: "rate" });
        if (s.r) m.quotaAllocated.set({ namespace, policy, pod, kind: "rate" }, s.rate);
      }
      quotaLabels.set(key, set);
    },
    breakers(namespace, policy, counts) {
      const key = `${namespace}/${policy}`;
      for (const labels of breakerLabels.get(key) ?? []) m.policyBreakers.remove(labels);
      breakerLabels.delete(key);
      if (!counts || counts.length === 0) return;
      const set: { namespace: string; policy: string; upstream: string; state: string }[] = [];
      for (const c of counts) {
        for (const [state, value] of [
          ["closed", c.closed],
          ["open", c.open],
          ["half_open", c.halfOpen],
        ] as const) {
          const labels = { namespace, policy, upstream: c.upstream, state };
          m.policyBreakers.set(labels, value);
          set.push(labels);
        }
      }
      breakerLabels.set(key, set);
    },
    sheddingLevel(namespace, policy, level) {
      if (level === undefined) m.sheddingLevel.remove({ namespace, policy });
      else m.sheddingLevel.set({ namespace, policy }, level);
    },
    propagationSeconds(seconds) {
      m.configPropagation.observe(seconds);
    },
  };
}
