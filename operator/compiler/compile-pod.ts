// One pod's config from the policies that select it. Each rule slot (an upstream, or inbound) goes to the
// policy that takes precedence; the winner's rule applies whole. Two upstream rules compete when they would
// collide in the agent: the same name (the metrics label), the same host:port (what the agent matches), or
// the same tcp listenPort. Losers keep every rule that collides with nothing.
import {
  SIDECAR_CONFIG_API_VERSION,
  type SidecarConfig,
  type UpstreamConfig,
} from "../api/sidecar-config.js";
import { createHash } from "node:crypto";
import { stableJson } from "./config-version.js";
import { lowerInbound, lowerUpstream, type PodQuota } from "./lower.js";
import type { PodInfo } from "./pod.js";
import type { CompilablePolicy } from "./policy.js";
import { comparePrecedence, precedenceReason } from "./precedence.js";

/** Names a rule slot in status messages: `upstream "payments"` or `inbound`. */
export type RuleLabel = string;

export interface RuleLoss {
  readonly rule: RuleLabel;
  readonly winner: string;
  readonly reason: string;
}

export interface PodOutcome {
  /** policy key → the rules of that policy in force on this pod. */
  readonly inForce: ReadonlyMap<string, readonly RuleLabel[]>;
  /** policy key → the rules of that policy that lost on this pod. */
  readonly lost: ReadonlyMap<string, readonly RuleLoss[]>;
}

/** What the cluster-level decisions (allocator) say for this pod. */
export interface PodAllocation {
  quota(policy: string, rule: string): PodQuota | undefined;
  sheddingLevel(policy: string): number;
}

export interface CompiledPod {
  readonly config: SidecarConfig;
  readonly outcome: PodOutcome;
}

export const INBOUND_RULE = "inbound";

export function upstreamRuleLabel(name: string): RuleLabel {
  return `upstream "${name}"`;
}

/** Compiles one pod. `policies` are those selecting it in enforce or shadow mode, in any order. */
export function compilePod(
  pod: PodInfo,
  policies: readonly CompilablePolicy[],
  allocation: PodAllocation,
): CompiledPod {
  const ordered = [...policies].sort(comparePrecedence);
  const inForce = new Map<string, RuleLabel[]>();
  const lost = new Map<string, RuleLoss[]>();
  const upstreams: Lowered<UpstreamConfig>[] = [];
  const claims = new Map<string, CompilablePolicy>(); // collision key → the policy holding it
  let inbound: Lowered<NonNullable<SidecarConfig["inbound"]>> | undefined;
  let inboundOwner: CompilablePolicy | undefined;

  const win = (p: CompilablePolicy, rule: RuleLabel) => push(inForce, p.key, rule);
  const lose = (p: CompilablePolicy, rule: RuleLabel, winner: CompilablePolicy) =>
    push(lost, p.key, { rule, winner: winner.key, reason: precedenceReason(winner, p) });

  for (const policy of ordered) {
    const origin = {
      policy: policy.key,
      mode: policy.spec.mode === "shadow" ? "shadow" : "enforce",
    } as const;
    for (const rule of policy.spec.upstreams ?? []) {
      const label = upstreamRuleLabel(rule.name);
      const keys = collisionKeys(rule);
      const holder = keys.map((k) => claims.get(k)).find((h) => h !== undefined);
      if (holder) {
        lose(policy, label, holder);
        continue;
      }
      for (const k of keys) claims.set(k, policy);
      const quota = allocation.quota(policy.key, rule.name);
      upstreams.push(memo(rule, variant(origin, quota), () => lowerUpstream(rule, origin, quota)));
      win(policy, label);
    }
    if (policy.spec.inbound) {
      if (inboundOwner) {
        lose(policy, INBOUND_RULE, inboundOwner);
      } else {
        inboundOwner = policy;
        const rule = policy.spec.inbound;
        const quota = allocation.quota(policy.key, INBOUND_RULE);
        const level = allocation.sheddingLevel(policy.key);
        inbound = memo(rule, `${variant(origin, quota)}|${level}`, () =>
          lowerInbound(rule, origin, quota, level),
        );
        win(policy, INBOUND_RULE);
      }
    }
  }

  // Upstreams sorted by name: the agent matches by host, so order carries no meaning and must not move the hash.
  upstreams.sort((a, b) => (a.value.name < b.value.name ? -1 : a.value.name > b.value.name ? 1 : 0));
  // The version hashes the same text stableJson would give for { inbound, upstreams }, assembled from the
  // rules' cached JSON so a full compile of thousands of pods does not re-serialise identical rules.
  const json = `{${inbound ? `"inbound":${inbound.json},` : ""}"upstreams":[${upstreams.map((u) => u.json).join(",")}]}`;
  const config: SidecarConfig = {
    apiVersion: SIDECAR_CONFIG_API_VERSION,
    kind: "SidecarConfig",
    version: hashVersion(json),
    pod: { namespace: pod.namespace, name: pod.name },
    upstreams: upstreams.map((u) => u.value),
    ...(inbound ? { inbound: inbound.value } : {}),
  };
  return { config, outcome: { inForce, lost } };
}

/** The config of a pod no policy selects: the agent passes traffic through. */
export function emptyConfig(pod: { namespace: string; name: string }): SidecarConfig {
  return {
    apiVersion: SIDECAR_CONFIG_API_VERSION,
    kind: "SidecarConfig",
    version: hashVersion(stableJson({ upstreams: [] })),
    pod: { namespace: pod.namespace, name: pod.name },
    upstreams: [],
  };
}

/** The config version: the first 16 hex digits of the SHA-256 of the config body's stable JSON. */
function hashVersion(json: string): string {
  return createHash("sha256").update(json).digest("hex").slice(0, 16);
}

interface Lowered<T> {
  readonly value: T;
  readonly json: string;
}

/**
 * Lowered rules by rule object and variant (origin, quota, level). A policy's spec objects live as long as
 * that generation of the policy, so the WeakMap forgets them with it; lowering is pure, so memoising it
 * cannot change a result.
 */
const lowered = new WeakMap<object, Map<string, Lowered<unknown>>>();

function memo<T>(rule: object, key: string, lower: () => T): Lowered<T> {
  let variants = lowered.get(rule);
  if (!variants) lowered.set(rule, (variants = new Map()));
  let hit = variants.get(key) as Lowered<T> | undefined;
  if (!hit) {
    const value = lower();
    hit = { value, json: stableJson(value) };
    variants.set(key, hit);
  }
  return hit;
}

function variant(origin: { policy: string; mode: string }, quota: PodQuota | undefined): string {
  return `${origin.policy}|${origin.mode}|${quota?.concurrency ?? ""}|${quota?.requestsPerSecond ?? ""}`;
}

function collisionKeys(rule: { name: string; host: string; port: number; listenPort?: number | undefined }) {
  const keys = [`name:${rule.name}`, `dest:${rule.host.toLowerCase()}:${rule.port}`];
  if (rule.listenPort !== undefined) keys.push(`listen:${rule.listenPort}`);
  return keys;
}

function push<V>(map: Map<string, V[]>, key: string, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
