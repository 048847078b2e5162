/**
 * Reconciles one ResiliencePolicy key (cert-manager's readiness controller is the model): read the
 * cached object, bring the compiler in line, and make the stored state say what is true.
 *
 * 1. Missing from the cache: it is gone (the finalizer was removed); forget it.
 * 2. Being deleted: its rules are already withdrawn from the compiler and the recomputed configs
 *    pushed (CompiledState). The finalizer is removed once every pod it selected has an agent that
 *    acknowledged the config it should run now, or has no agent connected — or after
 *    `withdrawalTimeoutMs`, so a wedged agent cannot block a deletion for ever.
 * 3. Otherwise: add the finalizer if missing; compute the status (policy-status.ts) from the
 *    compiler's result and the distributor's propagation; write it through `/status` only when it
 *    differs from the stored one, with the resourceVersion read (409: re-read, recompute, retry);
 *    send the Events the change is worth; update the metrics.
 *
 * Level-triggered: the key is all it gets; it reads current state and is safe to run twice. Writes
 * happen only while `canWrite()` (the leader gate) holds; a replica that lost the lease fails the
 * reconcile instead of writing.
 */
import type { BreakerCounts, Condition, ResiliencePolicyStatus } from "../api/status.js";
import type { QuotaShare } from "../compiler/policy-compiler.js";
import type { ConfigDistributor } from "../distribution/config-distributor.js";
import { statusCodeOf } from "../kube/types.js";
import type { BreakerReport } from "./breaker-summary.js";
import { summariseBreakers } from "./breaker-summary.js";
import type { Clock } from "./clock.js";
import { systemClock } from "./clock.js";
import type { CompiledState, PolicyObject } from "./compiled-state.js";
import type { ReconcileContext } from "./controller.js";
import type { EventRecorder, EventSubject } from "./event-recorder.js";
import { addFinalizerPatch, hasFinalizer, isBeingDeleted, removeFinalizerPatch } from "./finalizer.js";
import type { PropagationSummary } from "./pod-propagation.js";
import { summarisePropagation, withdrawalSettled } from "./pod-propagation.js";
import { policyEvents } from "./policy-events.js";
import { jsonEqual, policyStatus } from "./policy-status.js";
import type { ReconcileResult } from "./reconcile-result.js";
import { done, error, requeueAfter } from "./reconcile-result.js";

/** The API calls the reconciler makes. Errors carry `statusCode` (404, 409, 5xx). */
export interface PolicyApi {
  /** A fresh read (not the cache); undefined on 404. */
  get(namespace: string, name: string): Promise<PolicyObject | undefined>;
  /** PUT to `/status` with the object's resourceVersion: 409 when it is stale. */
  replaceStatus(obj: PolicyObject): Promise<PolicyObject>;
  /** A merge patch of the object (finalizers); a `metadata.resourceVersion` in it makes it conditional. */
  patch(namespace: string, name: string, patch: object): Promise<PolicyObject>;
}

export interface PolicyReconcilerMetrics {
  /** A policy's pods by propagation state; undefined when the policy is gone. */
  policyPods?(namespace: string, name: string, counts: PropagationSummary | undefined): void;
  /** A policy's quota shares; undefined when the policy is gone. */
  quotas?(namespace: string, name: string, quotas: readonly QuotaShare[] | undefined): void;
  /** Pods per breaker state of each upstream; undefined when the policy is gone. */
  breakers?(namespace: string, name: string, counts: readonly BreakerCounts[] | undefined): void;
  /** Tiers the policy's pods shed now (0 = none); undefined when the policy is gone. */
  sheddingLevel?(namespace: string, name: string, level: number | undefined): void;
  /** Policy change seen → last selected agent's ACK of the resulting config. */
  propagationSeconds?(seconds: number): void;
}

export interface PolicyReconcilerOptions {
  /** The policy cache (namespace/name → object). Required. */
  cache: { getByKey(key: string): PolicyObject | undefined };
  state: CompiledState;
  distributor: ConfigDistributor;
  api: PolicyApi;
  recorder?: EventRecorder<EventSubject & { readonly object: PolicyObject }>;
  /** A pod's latest agent report (breaker states), when the distributor keeps them. Defaults to none. */
  reportOf?(pod: string): BreakerReport | undefined;
  /** The allocator's shedding level for a policy (status.sheddingLevel); undefined keeps the stored one. */
  sheddingLevelOf?(policyKey: string): number | undefined;
  /** The leader gate: false → no write is attempted. Defaults to always true. */
  canWrite?(): boolean;
  clock?: Clock;
  metrics?: PolicyReconcilerMetrics;
  /**
   * Longest a deleted policy waits for its pods' agents to acknowledge the withdrawal before its
   * finalizer is removed anyway. Defaults to 30 000 ms.
   */
  withdrawalTimeoutMs?: number;
  /** Status writes tried per reconcile when they meet 409 Conflict. Defaults to 3. */
  conflictRetries?: number;
}

/** The leader gate closed while a reconcile wanted to write. */
export class NotLeaderError extends Error {
  constructor() {
    super("not the leader: status and finalizer writes are disabled");
    this.name = "NotLeaderError";
  }
}

interface Tracked {
  version: string;
  since: number;
  reported: boolean;
}

interface StatusWrite {
  /** The resourceVersion the write produced, and the status in it. */
  readonly resourceVersion: string;
  readonly status: ResiliencePolicyStatus;
  /** The object the API returned for the write. */
  readonly object: PolicyObject;
  /** The resourceVersion the write replaced. */
  readonly replaced: string | undefined;
}

export class PolicyReconciler {
  private readonly opts: PolicyReconcilerOptions;
  private readonly clock: Clock;
  private readonly withdrawalTimeoutMs: number;
  private readonly conflictRetries: number;
  /** Per policy: the config version last seen and when its propagation started. */
  private readonly tracked = new Map<string, Tracked>();
  /** Per policy: our last status write, the object it produced and the resourceVersion it replaced. */
  private readonly written = new Map<string, StatusWrite>();

  constructor(opts: PolicyReconcilerOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.withdrawalTimeoutMs = opts.withdrawalTimeoutMs ?? 30_000;
    this.conflictRetries = opts.conflictRetries ?? 3;
  }

  /** The `Reconciler` for the controller. */
  readonly reconcile = async (key: string, ctx?: ReconcileContext): Promise<ReconcileResult> => {
    const obj = this.opts.cache.getByKey(key);
    this.opts.state.syncPolicy(key, obj);
    if (!obj) {
      this.forget(key);
      return done();
    }
    if (isBeingDeleted(obj.metadata)) return this.finalize(key, obj);
    if (ctx?.signal.aborted) return error(new Error("controller stopping"));

    let current = obj;
    if (!hasFinalizer(current.metadata)) {
      const added = await this.write(() =>
        this.opts.api.patch(ns(current), name(current), addFinalizerPatch(current.metadata)),
      );
      if (added.kind === "failed") return added.result;
      current = added.value;
    }
    return this.writeStatus(key, current);
  };

  // ---- deletion ----

  private async finalize(key: string, obj: PolicyObject): Promise<ReconcileResult> {
    if (!hasFinalizer(obj.metadata)) return done();
    const w = this.opts.state.withdrawal(key);
    const waiting = (w?.pods ?? []).filter(
      (pod) => !withdrawalSettled(this.opts.distributor.propagation(pod)),
    );
    const elapsed = w ? this.clock.now() - w.since : Infinity;
    if (waiting.length > 0 && elapsed < this.withdrawalTimeoutMs) {
      // Distributor changes for those pods requeue the key; this is the timeout's backstop.
      return requeueAfter(this.withdrawalTimeoutMs - elapsed);
    }
    const removed = await this.write(() =>
      this.opts.api.patch(ns(obj), name(obj), removeFinalizerPatch(obj.metadata)),
    );
    if (removed.kind === "failed") {
      return statusCodeOf(removed.cause) === 404 ? this.gone(key) : removed.result;
    }
    return this.gone(key);
  }

  private gone(key: string): ReconcileResult {
    this.opts.state.forgetWithdrawal(key);
    this.forget(key);
    return done();
  }

  private forget(key: string): void {
    this.tracked.delete(key);
    this.written.delete(key);
    const [namespace = "", policyName = ""] = key.split("/");
    this.opts.metrics?.policyPods?.(namespace, policyName, undefined);
    this.opts.metrics?.quotas?.(namespace, policyName, undefined);
    this.opts.metrics?.sheddingLevel?.(namespace, policyName, undefined);
    this.opts.metrics?.breakers?.(namespace, policyName, undefined);
  }

  // ---- status ----

  private async writeStatus(key: string, first: PolicyObject): Promise<ReconcileResult> {
    // The cache lags our own writes: a reconcile right after a status write (the next ACK's) still finds
    // the resourceVersion that write replaced, and a PUT from it would only earn a 409 and a re-read. When
    // the cache holds exactly what we replaced, what we wrote is the newer object: start from that.
    const ours = this.written.get(key);
    let obj =
      ours !== undefined && ours.replaced !== undefined && ours.replaced === first.metadata?.resourceVersion
        ? ours.object
        : first;
    for (let attempt = 0; ; attempt++) {
      const { status, propagation } = this.computeStatus(key, obj);
      const previous = obj.status as ResiliencePolicyStatus | undefined;
      const written = this.written.get(key);
      const unchangedSinceOurWrite =
        written?.resourceVersion === obj.metadata?.resourceVersion && jsonEqual(written?.status, status);
      if (!jsonEqual(previous, status) && !unchangedSinceOurWrite) {
        const put = await this.write(() => this.opts.api.replaceStatus({ ...obj, status }));
        if (put.kind === "failed") {
          if (statusCodeOf(put.cause) === 404) return done(); // deleted meanwhile: the watch says so
          if (statusCodeOf(put.cause) !== 409 || attempt + 1 >= this.conflictRetries) return put.result;
          // Someone wrote in between: re-read and recompute from what is stored now.
          const fresh = await this.opts.api.get(ns(obj), name(obj)).catch((err: unknown) => err);
          if (fresh instanceof Error || fresh === null || typeof fresh !== "object") {
            return fresh === undefined ? done() : error(fresh);
          }
          const freshObj = fresh as PolicyObject;
          if (
            freshObj.metadata?.generation !== obj.metadata?.generation ||
            isBeingDeleted(freshObj.metadata)
          ) {
            // A newer spec or a deletion the cache has not delivered yet: its watch event requeues us.
            return error(new Error(`${key}: changed while writing status; waiting for the watch`));
          }
          obj = freshObj;
          continue;
        }
        this.written.set(key, {
          resourceVersion: put.value.metadata?.resourceVersion ?? "",
          status,
          object: put.value,
          replaced: obj.metadata?.resourceVersion,
        });
        this.emitEvents(obj, previous?.conditions, status);
      }
      this.record(key, status, propagation);
      return done();
    }
  }

  private computeStatus(
    key: string,
    obj: PolicyObject,
  ): { status: ResiliencePolicyStatus; propagation: PropagationSummary | undefined } {
    const { state, distributor } = this.opts;
    const result = state.compiler.result(key);
    const propagation = result
      ? summarisePropagation(
          result.selectedPods,
          (pod) => state.compiler.config(pod)?.version,
          (pod) => distributor.propagation(pod),
        )
      : undefined;
    const reportOf = this.opts.reportOf;
    const breakers = result && reportOf ? summariseBreakers(key, result.selectedPods, reportOf) : undefined;
    const status = policyStatus({
      generation: obj.metadata?.generation ?? 0,
      breakers,
      sheddingLevel: this.opts.sheddingLevelOf?.(key),
      validation: state.validation(key),
      result,
      propagation,
      previous: obj.status as ResiliencePolicyStatus | undefined,
      nowMs: this.clock.now(),
    });
    return { status, propagation };
  }

  private emitEvents(
    obj: PolicyObject,
    before: readonly Condition[] | undefined,
    after: ResiliencePolicyStatus,
  ) {
    const recorder = this.opts.recorder;
    if (!recorder) return;
    const previousVersion = (obj.status as ResiliencePolicyStatus | undefined)?.configVersion;
    const events = policyEvents(before, after.conditions ?? [], {
      ...(after.configVersion === undefined ? {} : { configVersion: after.configVersion }),
      configVersionChanged: previousVersion !== after.configVersion,
      sheddingBefore: (obj.status as ResiliencePolicyStatus | undefined)?.sheddingLevel ?? 0,
      sheddingAfter: after.sheddingLevel ?? 0,
    });
    const subject = {
      ...(obj.metadata?.uid === undefined ? {} : { uid: obj.metadata.uid }),
      namespace: ns(obj),
      name: name(obj),
      object: obj,
    };
    for (const e of events) recorder.record(subject, e);
  }

  /** Metrics, and the propagation time of a config version once every selected pod acked it. */
  private record(key: string, status: ResiliencePolicyStatus, p: PropagationSummary | undefined): void {
    const [namespace = "", policyName = ""] = key.split("/");
    const m = this.opts.metrics;
    m?.policyPods?.(namespace, policyName, p);
    m?.quotas?.(namespace, policyName, this.opts.state.compiler.result(key)?.quotas ?? []);
    m?.sheddingLevel?.(namespace, policyName, status.sheddingLevel ?? 0);
    m?.breakers?.(namespace, policyName, status.breakers ?? []);
    const version = status.configVersion;
    const changedAt = this.opts.state.takeChangedAt(key);
    if (version === undefined || !p) return;
    let t = this.tracked.get(key);
    if (!t || t.version !== version) {
      t = { version, since: changedAt ?? this.clock.now(), reported: false };
      this.tracked.set(key, t);
    }
    if (!t.reported && p.selected > 0 && p.acked === p.selected) {
      t.reported = true;
      m?.propagationSeconds?.(Math.max(0, this.clock.now() - t.since) / 1000);
    }
  }

  /** Runs a write behind the leader gate; a failure becomes the result to return (backoff). */
  private async write<T>(
    fn: () => Promise<T>,
  ): Promise<{ kind: "ok"; value: T } | { kind: "failed"; cause: unknown; result: ReconcileResult }> {
    if (this.opts.canWrite && !this.opts.canWrite()) {
      const cause = new NotLeaderError();
      return { kind: "failed", cause, result: error(cause) };
    }
    try {
      return { kind: "ok", value: await fn() };
    } catch (cause) {
      return { kind: "failed", cause, result: error(cause) };
    }
  }
}

function ns(obj: PolicyObject): string {
  return obj.metadata?.namespace ?? "default";
}

function name(obj: PolicyObject): string {
  return obj.metadata?.name ?? "";
}
