// Defaults that depend on another field, so the CRD cannot carry them as schema `default`s (a CRD default is
// static: a default for an HTTP-only field would land on tcp upstreams too and break the tcp rules).
// `validatePolicy` applies these after validation; the field descriptions state them; the CEL rules that
// compare against an unset field use the same constants.

/** Defaults applied to `protocol: http` upstreams only. */
export const HTTP_UPSTREAM_DEFAULTS = {
  /** Whole-request timeout, all tries and backoff included (Envoy's route default). */
  timeout: "15s",
  /** Conditions a failed try is retried on. */
  retryOn: ["connect-failure", "refused-stream", "reset", "gateway-error"],
  /** Non-idempotent methods (POST, PATCH, …) are not retried unless asked. */
  retryNonIdempotent: false,
  /** A `Retry-After` header on 429/503 sets the next wait (within what is left of the timeout). */
  honorRetryAfter: true,
} as const;
