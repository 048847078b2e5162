// The distribution protocol's schemas: every message survives a JSON round trip, bounds hold, and old and
// new peers can tell each other apart by protocol version.
import { describe, expect, it } from "vitest";
import {
  MIN_PROTOCOL_VERSION,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  asAck,
  parseAgentMessage,
  parseOperatorMessage,
  protocolSupported,
  type AgentMessage,
  type OperatorMessage,
} from "../../operator/api/agent-protocol.js";
import { config } from "./helpers.js";

const roundTrip = <T>(m: T): unknown => JSON.parse(JSON.stringify(m));

const agentMessages: AgentMessage[] = [
  {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    pod: { namespace: "shop", name: "web-1" },
    agentVersion: "0.1.0",
    configVersion: "3f9c2a1b",
  },
  {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    pod: { namespace: "shop", name: "web-1" },
    agentVersion: "0.1.0",
  },
  { type: "ack", version: "3f9c2a1b", nonce: "ab12-1" },
  {
    type: "nack",
    nonce: "ab12-2",
    rejectedVersion: "bad",
    activeVersion: "3f9c2a1b",
    problems: [{ path: "upstreams[0].port", message: "Too big" }],
  },
  {
    type: "report",
    report: {
      pod: { namespace: "shop", name: "web-1" },
      activeVersion: "3f9c2a1b",
      appHealth: "healthy",
      upstreams: [{ upstream: "payments", policy: "shop/p", breaker: "half-open", inflight: 3, queued: 1 }],
      inbound: { inflight: 4, concurrencyLimit: 40, sheddingLevel: 1, shedSinceLastReport: 7 },
      at: 1_700_000_000_000,
    },
  },
  { type: "ping", id: 1 },
  { type: "pong", id: 1 },
  { type: "goodbye", reason: "agent stopping" },
];

const operatorMessages: OperatorMessage[] = [
  {
    type: "welcome",
    protocol: PROTOCOL_VERSION,
    operator: "op-0",
    keepaliveIntervalMs: 3000,
    deadAfterMs: 10000,
  },
  { type: "config", version: "v1", nonce: "ab12-3", config: config("shop/web-1", "v1") },
  { type: "error", code: "forbidden", message: "the token is bound to pod shop/web-2, not shop/web-1" },
  { type: "error", code: "unsupported-protocol", message: "no", supported: { min: 1, max: 1 } },
  { type: "ping", id: 9 },
  { type: "pong", id: 9 },
  { type: "goodbye", reason: "operator shutting down" },
];

describe("agent protocol", () => {
  it("every agent message survives a JSON round trip unchanged", () => {
    for (const m of agentMessages) expect(parseAgentMessage(roundTrip(m))).toEqual({ ok: true, message: m });
  });

  it("every operator message survives a JSON round trip unchanged", () => {
    for (const m of operatorMessages)
      expect(parseOperatorMessage(roundTrip(m))).toEqual({ ok: true, message: m });
  });

  it("a config push carries any document, so the agent (not the protocol) judges it and can NACK", () => {
    const push = { type: "config", version: "v2", nonce: "n", config: { nonsense: true } };
    expect(parseOperatorMessage(push).ok).toBe(true);
  });

  it("refuses unknown types, unknown fields, one side's messages on the other side, and oversize content", () => {
    expect(parseAgentMessage({ type: "subscribe" })).toMatchObject({ ok: false });
    expect(parseAgentMessage({ type: "ack", version: "v", nonce: "n", extra: 1 })).toMatchObject({
      ok: false,
    });
    expect(
      parseAgentMessage({
        type: "welcome",
        protocol: 1,
        operator: "x",
        keepaliveIntervalMs: 1,
        deadAfterMs: 2,
      }).ok,
    ).toBe(false);
    expect(parseOperatorMessage({ type: "ack", version: "v", nonce: "n" }).ok).toBe(false);
    const many = Array.from({ length: PROTOCOL_LIMITS.maxProblems + 1 }, () => ({ path: "a", message: "b" }));
    expect(parseAgentMessage({ type: "nack", nonce: "n", problems: many }).ok).toBe(false);
    const long = "x".repeat(PROTOCOL_LIMITS.maxText + 1);
    const r = parseAgentMessage({ type: "goodbye", reason: long });
    expect(r).toMatchObject({ ok: false });
    if (!r.ok) expect(r.problem).toMatch(/^reason:/);
  });

  it("the hand-checked ACK accepts exactly what the schema accepts", () => {
    const ok = { type: "ack", version: "3f9c2a1b", nonce: "ab12-1" };
    const candidates: unknown[] = [
      ok,
      { ...ok, extra: 1 },
      { ...ok, version: "" },
      { ...ok, version: "v".repeat(100) },
      { ...ok, version: "v".repeat(101) },
      { ...ok, nonce: 7 },
      { type: "ack", version: "v" },
      { ...ok, type: "nack" },
      JSON.parse('{"type":"ack","version":"v","nonce":"n","__proto__":{"x":1}}'),
      [ok],
      null,
      "ack",
      ...agentMessages,
    ];
    for (const c of candidates) {
      const schema = parseAgentMessage(c);
      const fast = asAck(c);
      expect(fast !== undefined, JSON.stringify(c)).toBe(schema.ok && schema.message.type === "ack");
      if (fast !== undefined && schema.ok) expect(fast).toEqual(schema.message);
    }
  });

  it("tells protocol versions apart: a hello always states one, and only the supported range is accepted", () => {
    const noVersion = { type: "hello", pod: { namespace: "a", name: "b" }, agentVersion: "x" };
    expect(parseAgentMessage(noVersion).ok).toBe(false);
    expect(protocolSupported(PROTOCOL_VERSION)).toBe(true);
    expect(protocolSupported(MIN_PROTOCOL_VERSION - 1)).toBe(false);
    expect(protocolSupported(PROTOCOL_VERSION + 1)).toBe(false);
    // A newer agent's hello still parses (the version is a number, not a literal), so the operator can answer
    // with unsupported-protocol and the range it accepts instead of a bare bad-message.
    expect(parseAgentMessage({ ...noVersion, protocol: PROTOCOL_VERSION + 1 }).ok).toBe(true);
  });
});
