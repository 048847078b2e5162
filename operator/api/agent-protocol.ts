// The distribution protocol between the operator and its agents: every message either side may send, as zod
// schemas, so both ends validate what they receive and the docs have one source.
//
// Transport (operator/distribution): the agent opens `GET /v1/distribution` with `Upgrade: bulwark-distribution`
// and `Authorization: Bearer <its pod's projected ServiceAccount token, audience bulwark>`; the operator
// answers 101 once TokenReview accepted the token, and the connection then carries one JSON object per line
// (NDJSON) each way. The exchange after that:
//
//   agent                                   operator
//   hello {protocol, pod, configVersion} ─►
//                                       ◄─ welcome {protocol, keepalive}           (or error + close)
//                                       ◄─ config {version, nonce, config}         (only when the version differs)
//   ack {version, nonce} | nack {…}      ─►
//   report {…} every few seconds        ─►
//   ping/pong either way when idle      ◄─►
//   goodbye / error, then close         ◄─►
//
// It is xDS's state-of-the-world exchange with one resource type (the pod's whole SidecarConfig), so there
// is no type_url, no resource names and no ordering between types; version + nonce + ACK/NACK are kept.
import { z } from "zod";

/** The protocol version this build speaks. Bump on an incompatible change to any message below. */
export const PROTOCOL_VERSION = 1;
/** The oldest protocol version this build still accepts from a peer. */
export const MIN_PROTOCOL_VERSION = 1;

/** Path and Upgrade token of the distribution endpoint. */
export const DISTRIBUTION_PATH = "/v1/distribution";
export const DISTRIBUTION_UPGRADE = "bulwark-distribution";
/** The audience an agent's ServiceAccount token must carry (CONTRACT.md "Agent identity"). */
export const AGENT_TOKEN_AUDIENCE = "bulwark";

/** Upper bounds on what a peer may send, so a broken or hostile one cannot make the other side grow. */
export const PROTOCOL_LIMITS = {
  /** Problems carried by one NACK. */
  maxProblems: 50,
  /** Length of a problem's path or message, a reason, an error message. */
  maxText: 1024,
  /** Upstreams in one report. */
  maxReportUpstreams: 1000,
} as const;

const text = z.string().max(PROTOCOL_LIMITS.maxText);
const name = z.string().min(1).max(253);
const version = z.string().min(1).max(100);
const nonce = z.string().min(1).max(100);
const protocolVersion = z.number().int().positive();
const count = z.number().int().nonnegative();

export const podRefSchema = z.strictObject({ namespace: name, name });

export const configProblemSchema = z.strictObject({ path: text, message: text });

/** AgentReport (operator/agent/config-source.ts) on the wire. */
export const agentReportSchema = z.strictObject({
  pod: z.strictObject({ namespace: name.optional(), name: name.optional() }),
  activeVersion: version.optional(),
  appHealth: z.enum(["healthy", "unhealthy", "unknown"]),
  upstreams: z
    .array(
      z.strictObject({
        upstream: name,
        policy: name,
        breaker: z.enum(["closed", "open", "half-open", "none"]),
        inflight: count,
        queued: count,
      }),
    )
    .max(PROTOCOL_LIMITS.maxReportUpstreams),
  inbound: z
    .strictObject({
      inflight: count,
      concurrencyLimit: z.number().nonnegative().optional(),
      sheddingLevel: count,
      shedSinceLastReport: count,
      // Optional: agents before these fields report no error ratio (the pod is judged on health checks).
      completedSinceLastReport: count.optional(),
      failedSinceLastReport: count.optional(),
    })
    .optional(),
  at: z.number().nonnegative(),
});

const ping = z.strictObject({ type: z.literal("ping"), id: z.number().int().nonnegative() });
const pong = z.strictObject({ type: z.literal("pong"), id: z.number().int().nonnegative() });
const goodbye = z.strictObject({ type: z.literal("goodbye"), reason: text });

export const helloSchema = z.strictObject({
  type: z.literal("hello"),
  /** The protocol version the agent speaks. */
  protocol: protocolVersion,
  /** The pod the agent runs in; must be the pod its token is bound to. */
  pod: podRefSchema,
  /** The agent's build (`bulwark` package version), for logs and upgrade planning. */
  agentVersion: text,
  /** The config version in force (restored from its state dir, or from a previous connection); absent when none. */
  configVersion: version.optional(),
});

export const ackSchema = z.strictObject({
  type: z.literal("ack"),
  /** The version now in force: the pushed one. */
  version,
  /** The nonce of the push being answered. */
  nonce,
});

export const nackSchema = z.strictObject({
  type: z.literal("nack"),
  nonce,
  /** The pushed version that was refused, when the agent could read it. */
  rejectedVersion: version.optional(),
  /** The version that keeps serving, if any (xDS: the previous version_info). */
  activeVersion: version.optional(),
  problems: z.array(configProblemSchema).max(PROTOCOL_LIMITS.maxProblems),
});

export const reportMessageSchema = z.strictObject({ type: z.literal("report"), report: agentReportSchema });

/** Everything an agent sends. */
export const agentMessageSchema = z.discriminatedUnion("type", [
  helloSchema,
  ackSchema,
  nackSchema,
  reportMessageSchema,
  ping,
  pong,
  goodbye,
]);

export const welcomeSchema = z.strictObject({
  type: z.literal("welcome"),
  protocol: protocolVersion,
  /** Which operator replica answered (logs). */
  operator: text,
  /** Send a ping after this long without hearing from the operator (ms). */
  keepaliveIntervalMs: z.number().int().positive(),
  /** The operator drops a connection it has not heard from for this long (ms); the agent should do the same. */
  deadAfterMs: z.number().int().positive(),
});

export const configPushSchema = z.strictObject({
  type: z.literal("config"),
  version,
  nonce,
  /**
   * The pod's whole SidecarConfig. Deliberately not validated here: the agent validates it with
   * parseSidecarConfig, so a config it cannot accept is NACKed with the reasons instead of being dropped
   * as a malformed message.
   */
  config: z.unknown(),
});

export const ERROR_CODES = [
  /** hello named another pod than the token is bound to. */
  "forbidden",
  /** The agent's protocol version is outside what this operator accepts. */
  "unsupported-protocol",
  /** A message that is not JSON, not a known type, or too large. */
  "bad-message",
  /** hello did not arrive in time. */
  "hello-timeout",
  /** A newer connection for the same pod took over. */
  "replaced",
  /** Nothing heard for longer than the dead-peer timeout. */
  "keepalive-timeout",
] as const;

export const errorSchema = z.strictObject({
  type: z.literal("error"),
  code: z.enum(ERROR_CODES),
  message: text,
  /** For unsupported-protocol: the range the operator accepts. */
  supported: z.strictObject({ min: protocolVersion, max: protocolVersion }).optional(),
});

/** Everything the operator sends. */
export const operatorMessageSchema = z.discriminatedUnion("type", [
  welcomeSchema,
  configPushSchema,
  errorSchema,
  ping,
  pong,
  goodbye,
]);

export type AgentMessage = z.infer<typeof agentMessageSchema>;
export type OperatorMessage = z.infer<typeof operatorMessageSchema>;
export type Hello = z.infer<typeof helloSchema>;
export type Welcome = z.infer<typeof welcomeSchema>;
export type ConfigPush = z.infer<typeof configPushSchema>;
export type Ack = z.infer<typeof ackSchema>;
export type Nack = z.infer<typeof nackSchema>;
export type ProtocolError = z.infer<typeof errorSchema>;
export type ErrorCode = (typeof ERROR_CODES)[number];
export type WireAgentReport = z.infer<typeof agentReportSchema>;

/** Refusal bodies of the upgrade request (HTTP 401/403/503), JSON. */
export const refusalSchema = z.strictObject({ code: text, message: text });
export type Refusal = z.infer<typeof refusalSchema>;

export type Parsed<T> = { ok: true; message: T } | { ok: false; problem: string };

function parseWith<T>(schema: z.ZodType<T>, value: unknown): Parsed<T> {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, message: r.data };
  const issue = r.error.issues[0];
  const path = issue?.path.map(String).join(".") ?? "";
  return { ok: false, problem: `${path === "" ? "(root)" : path}: ${issue?.message ?? "invalid"}` };
}

/** Validates a decoded message from an agent. */
export function parseAgentMessage(value: unknown): Parsed<AgentMessage> {
  return parseWith(agentMessageSchema, value);
}

/**
 * An ACK, checked by hand: the one message every push brings back, thousands per change at scale, where a
 * zod parse costs several times the rest of its handling. Accepts exactly what ackSchema accepts and returns
 * undefined for anything else, which then goes through parseAgentMessage (and its error message).
 */
export function asAck(value: unknown): Ack | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (v.type !== "ack" || !isBounded(v.version, 100) || !isBounded(v.nonce, 100)) return undefined;
  let keys = 0;
  for (const k in v) {
    if (!Object.hasOwn(v, k)) return undefined;
    keys++;
  }
  return keys === 3 && Object.getPrototypeOf(v) === Object.prototype ? (v as Ack) : undefined;
}

function isBounded(s: unknown, max: number): s is string {
  return typeof s === "string" && s.length >= 1 && s.length <= max;
}

/** Validates a decoded message from the operator. */
export function parseOperatorMessage(value: unknown): Parsed<OperatorMessage> {
  return parseWith(operatorMessageSchema, value);
}

/** True when this build accepts a peer speaking `version`. */
export function protocolSupported(version: number): boolean {
  return version >= MIN_PROTOCOL_VERSION && version <= PROTOCOL_VERSION;
}
