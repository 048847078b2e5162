// Who is on the other end of a distribution connection: the pod its bearer token is bound to.
//
// An agent presents its pod's projected ServiceAccount token for the audience `bulwark` (CONTRACT.md "Agent
// identity"). TokenReview (authentication.k8s.io/v1) tells whether the API server issued it, for that
// audience, and, in `status.user.extra["authentication.kubernetes.io/pod-name"]`, which pod it is bound to;
// the namespace is the ServiceAccount's (`system:serviceaccount:<ns>:<name>`). A token bound to no pod is
// refused: it would let any workload of that ServiceAccount pose as any of its pods.
//
// Results are cached by the token's SHA-256 (never the token itself) for a short while, and never past the
// token's own `exp`, so a reconnect does not cost an API call; failures are cached for less, so a client
// hammering with a bad token costs one review per few seconds. The cache is bounded (oldest entries go
// first) and reviews in flight are capped, so a reconnect storm queues instead of flooding the API server.
import { createHash } from "node:crypto";
import { AGENT_TOKEN_AUDIENCE } from "../api/agent-protocol.js";
import type { KubeClient } from "../kube/client.js";

export type AuthRefusal =
  /** No bearer token in the request. */
  | "no-token"
  /** TokenReview says it is not a valid token for the audience (forged, expired, wrong audience, pod gone). */
  | "invalid-token"
  /** A valid ServiceAccount token, but not bound to a pod. */
  | "not-pod-bound"
  /** The review itself failed (API server unreachable): the agent should retry. */
  | "review-unavailable";

export type AuthResult =
  | {
      readonly ok: true;
      /** `namespace/name` of the pod the token is bound to. */
      readonly pod: string;
      readonly podUid: string | undefined;
      readonly username: string;
    }
  | { readonly ok: false; readonly reason: AuthRefusal; readonly message: string };

export interface AgentAuthenticator {
  /** Never rejects. */
  authenticate(token: string | undefined): Promise<AuthResult>;
}

export interface TokenReviewAuthenticatorOptions {
  /** The audience the token must carry. Default `bulwark`. */
  audience?: string;
  /** How long an accepted token is trusted without a new review, ms. Default 60 000 (capped by its exp). */
  ttlMs?: number;
  /** How long a refused token stays refused without a new review, ms. Default 5000. */
  negativeTtlMs?: number;
  /** Cached results kept at most. Default 20 000. */
  maxEntries?: number;
  /** TokenReviews in flight at most; more wait their turn. Default 32. */
  maxConcurrent?: number;
  /** Wall clock, ms. Default Date.now. */
  now?: () => number;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; uid?: string; extra?: Record<string, string[] | undefined> };
}

const POD_NAME = "authentication.kubernetes.io/pod-name";
const POD_UID = "authentication.kubernetes.io/pod-uid";
const SA_PREFIX = "system:serviceaccount:";

/** The authenticator the operator uses: TokenReview through the operator's KubeClient. */
export class TokenReviewAuthenticator implements AgentAuthenticator {
  private readonly audience: string;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly maxConcurrent: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, { result: AuthResult; until: number }>();
  private readonly inflight = new Map<string, Promise<AuthResult>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** TokenReview calls made (tests, metrics). */
  reviews = 0;

  constructor(
    private readonly kube: Pick<KubeClient, "request">,
    options: TokenReviewAuthenticatorOptions = {},
  ) {
    this.audience = options.audience ?? AGENT_TOKEN_AUDIENCE;
    this.ttlMs = options.ttlMs ?? 60_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 5000;
    this.maxEntries = options.maxEntries ?? 20_000;
    this.maxConcurrent = options.maxConcurrent ?? 32;
    this.now = options.now ?? Date.now;
  }

  /** Cached entries now. */
  get size(): number {
    return this.cache.size;
  }

  async authenticate(token: string | undefined): Promise<AuthResult> {
    if (token === undefined || token === "") {
      return { ok: false, reason: "no-token", message: "no bearer token" };
    }
    const key = createHash("sha256").update(token).digest("base64url");
    const hit = this.cache.get(key);
    const now = this.now();
    if (hit) {
      if (hit.until > now) return hit.result;
      this.cache.delete(key);
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.review(token).then((result) => {
      this.inflight.delete(key);
      if (result.ok || result.reason !== "review-unavailable") {
        const ttl = result.ok ? this.ttlMs : this.negativeTtlMs;
        const exp = result.ok ? tokenExpiry(token) : undefined;
        const until = Math.min(this.now() + ttl, exp ?? Infinity);
        this.cache.set(key, { result, until });
        while (this.cache.size > this.maxEntries) {
          const oldest = this.cache.keys().next().value;
          if (oldest === undefined) break;
          this.cache.delete(oldest);
        }
      }
      return result;
    });
    this.inflight.set(key, p);
    return p;
  }

  private async review(token: string): Promise<AuthResult> {
    if (this.running >= this.maxConcurrent) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    this.reviews++;
    try {
      const res = await this.kube.request<{ status?: TokenReviewStatus }>({
        method: "POST",
        path: "/apis/authentication.k8s.io/v1/tokenreviews",
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenReview",
          spec: { token, audiences: [this.audience] },
        },
        timeoutMs: 10_000,
      });
      return interpret(res.status ?? {}, this.audience);
    } catch (err) {
      return {
        ok: false,
        reason: "review-unavailable",
        message: `TokenReview failed: ${(err as Error).message}`.slice(0, 300),
      };
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

/** Reads a TokenReview status into a result. */
export function interpret(status: TokenReviewStatus, audience: string): AuthResult {
  if (status.authenticated !== true) {
    return {
      ok: false,
      reason: "invalid-token",
      message: `token refused: ${status.error ?? "not authenticated"}`.slice(0, 300),
    };
  }
  // An API server that ignores spec.audiences echoes none back; then the token is not known to be ours.
  if (!(status.audiences ?? []).includes(audience)) {
    return { ok: false, reason: "invalid-token", message: `token is not for the audience "${audience}"` };
  }
  const username = status.user?.username ?? "";
  const podName = status.user?.extra?.[POD_NAME]?.[0];
  if (!username.startsWith(SA_PREFIX) || podName === undefined) {
    return {
      ok: false,
      reason: "not-pod-bound",
      message: `token of ${username || "an unknown user"} is not bound to a pod`,
    };
  }
  const namespace = username.slice(SA_PREFIX.length).split(":")[0] ?? "";
  return {
    ok: true,
    pod: `${namespace}/${podName}`,
    podUid: status.user?.extra?.[POD_UID]?.[0],
    username,
  };
}

/** The `exp` claim of a JWT in epoch ms, read without verifying (only to cap the cache). */
function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { exp?: unknown };
    return typeof claims.exp === "number" ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** A fixed token → pod table, for tests and the benchmark (no API server). */
export class StaticAuthenticator implements AgentAuthenticator {
  constructor(
    private readonly tokens: ReadonlyMap<string, string> | ((token: string) => string | undefined),
  ) {}

  authenticate(token: string | undefined): Promise<AuthResult> {
    if (token === undefined || token === "") {
      return Promise.resolve({ ok: false, reason: "no-token", message: "no bearer token" });
    }
    const pod = typeof this.tokens === "function" ? this.tokens(token) : this.tokens.get(token);
    return Promise.resolve(
      pod === undefined
        ? { ok: false, reason: "invalid-token", message: "unknown token" }
        : { ok: true, pod, podUid: undefined, username: `static:${pod}` },
    );
  }
}
