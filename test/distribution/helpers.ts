// Shared pieces of the distribution tests: configs, a scripted agent around OperatorConfigSource, waiting.
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { Duplex } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DISTRIBUTION_PATH,
  DISTRIBUTION_UPGRADE,
  PROTOCOL_VERSION,
  type AgentMessage,
  type OperatorMessage,
} from "../../operator/api/agent-protocol.js";
import {
  SIDECAR_CONFIG_API_VERSION,
  parseSidecarConfig,
  type SidecarConfig,
} from "../../operator/api/sidecar-config.js";
import type { ConfigCandidate, ConfigVerdict } from "../../operator/agent/config-source.js";
import {
  OperatorConfigSource,
  type OperatorConfigSourceOptions,
} from "../../operator/distribution/agent-client.js";
import { NdjsonStream } from "../../operator/distribution/ndjson-stream.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(cond: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** A valid config for `ns/name` whose version is `v` (one HTTP upstream, so versions differ in content). */
export function config(pod: string, v: string, extraBytes = 0): SidecarConfig {
  const [namespace = "", name = ""] = pod.split("/");
  return {
    apiVersion: SIDECAR_CONFIG_API_VERSION,
    kind: "SidecarConfig",
    version: v,
    pod: { namespace, name },
    upstreams: [
      {
        policy: `${namespace}/p`,
        mode: "enforce",
        name: "payments",
        protocol: "http",
        host: "payments.shop.svc.cluster.local",
        port: 8080,
        timeoutMs: 1000 + (extraBytes > 0 ? 1 : 0),
        ...(extraBytes > 0
          ? {
              fallback: {
                on: ["upstream-error"],
                action: { kind: "static", status: 200, headers: {}, body: "x".repeat(extraBytes) },
              },
            }
          : {}),
      },
    ],
  };
}

export function tokenFile(token: string): string {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-dist-"));
  const f = join(dir, "token");
  writeFileSync(f, token);
  return f;
}

/** An agent stand-in: validates pushes like the agent does (parseSidecarConfig), keeps the last good one. */
export class ScriptedAgent {
  version: string | undefined;
  readonly received: string[] = [];
  readonly source: OperatorConfigSource;
  /** Refuse every push while set. */
  refuse = false;

  constructor(opts: Omit<OperatorConfigSourceOptions, "activeVersion">, initialVersion?: string) {
    this.version = initialVersion;
    this.source = new OperatorConfigSource({ ...opts, activeVersion: () => this.version });
  }

  start(): this {
    this.source.subscribe((c) => this.apply(c));
    return this;
  }

  apply(c: ConfigCandidate): ConfigVerdict {
    if ("decodeError" in c) throw new Error("unexpected decode error");
    const parsed = parseSidecarConfig(c.document);
    const v = (c.document as { version?: string }).version;
    if (v) this.received.push(v);
    if (!parsed.ok || this.refuse) {
      return {
        accepted: false,
        rejectedVersion: v,
        activeVersion: this.version,
        problems: parsed.ok ? [{ path: "(root)", message: "refused by test" }] : parsed.problems,
      };
    }
    const unchanged = parsed.config.version === this.version;
    this.version = parsed.config.version;
    return { accepted: true, version: parsed.config.version, unchanged };
  }

  stop(): Promise<void> {
    return this.source.close();
  }
}

/** A bare protocol client: sends what the test says, records what it gets; answers nothing by itself. */
export interface RawClient {
  readonly messages: OperatorMessage[];
  readonly socket: Duplex;
  send(msg: AgentMessage): void;
  closed(): boolean;
  /** Resolves with the first recorded message of `type` (waits for it). */
  next<T extends OperatorMessage["type"]>(
    type: T,
    timeoutMs?: number,
  ): Promise<Extract<OperatorMessage, { type: T }>>;
}

export function rawClient(
  url: string,
  token: string,
  hello?: Partial<AgentMessage & { type: "hello" }>,
): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${DISTRIBUTION_PATH}`, {
      headers: { connection: "Upgrade", upgrade: DISTRIBUTION_UPGRADE, authorization: `Bearer ${token}` },
      agent: false,
    });
    req.on("response", (res) => reject(new Error(`refused: ${res.statusCode}`)));
    req.on("error", reject);
    req.on("upgrade", (_res, socket: Duplex, head: Buffer) => {
      const messages: OperatorMessage[] = [];
      let isClosed = false;
      const stream = new NdjsonStream(
        socket,
        {
          maxFrameBytes: 64 * 1024 * 1024,
          maxBufferedBytes: 1024 * 1024,
          onFrame: (v) => messages.push(v as OperatorMessage),
          onClose: () => (isClosed = true),
        },
        head,
      );
      const client: RawClient = {
        messages,
        socket,
        send: (m) => void stream.send(m),
        closed: () => isClosed,
        async next(type, timeoutMs = 5000) {
          let found: OperatorMessage | undefined;
          await until(() => (found = messages.find((m) => m.type === type)) !== undefined, timeoutMs, type);
          return found as never;
        },
      };
      if (hello) {
        client.send({
          type: "hello",
          protocol: PROTOCOL_VERSION,
          pod: { namespace: "shop", name: "x" },
          agentVersion: "test",
          ...hello,
        } as AgentMessage);
      }
      resolve(client);
    });
    req.end();
  });
}
