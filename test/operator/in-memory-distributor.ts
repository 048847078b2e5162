/**
 * An in-memory ConfigDistributor for tests of the control loop: agents are entries in a map that
 * connect, disconnect, ACK and NACK on command, or ACK automatically whatever they are sent.
 */
import type { SidecarConfig } from "../../operator/api/sidecar-config.js";
import { emptyConfig } from "../../operator/compiler/compile-pod.js";
import type { ConfigDistributor, PodPropagation } from "../../operator/distribution/config-distributor.js";
import type { LoadReport } from "../../operator/quota/cluster-round.js";

/** An agent report as the in-memory agents send it (the fields the operator reads). */
export interface TestReport extends LoadReport {
  readonly upstreams: readonly {
    readonly upstream: string;
    readonly policy: string;
    readonly breaker: "closed" | "open" | "half-open" | "none";
  }[];
}

interface Agent {
  connected: boolean;
  ackedVersion?: string;
  rejected?: { version: string; reason: string };
}

export class InMemoryDistributor implements ConfigDistributor {
  readonly desired = new Map<string, SidecarConfig>();
  private readonly agents = new Map<string, Agent>();
  private readonly listeners = new Set<(pod: string) => void>();
  private readonly reportListeners = new Set<(pod: string) => void>();
  private readonly reports = new Map<string, TestReport>();
  /** Connected agents ACK every config they are sent (on the next tick). */
  autoAck = false;
  /** Pods whose agent NACKs whatever it is sent, with this reason (wins over autoAck). */
  readonly autoNack = new Map<string, string>();
  /** setDesired calls, in order. */
  readonly pushes: Array<{ pod: string; version: string | undefined }> = [];

  setDesired(pod: string, config: SidecarConfig | undefined): void {
    const cfg = config ?? emptyConfig(splitKey(pod));
    const before = this.desired.get(pod)?.version;
    this.desired.set(pod, cfg);
    this.pushes.push({ pod, version: config?.version });
    if (before === cfg.version) return;
    const agent = this.agents.get(pod);
    if (agent?.connected && (this.autoAck || this.autoNack.has(pod))) {
      queueMicrotask(() => {
        const reason = this.autoNack.get(pod);
        if (reason !== undefined) this.nack(pod, reason);
        else this.ack(pod);
      });
    }
  }

  propagation(pod: string): PodPropagation {
    const agent = this.agents.get(pod);
    const desiredVersion = this.desired.get(pod)?.version;
    return {
      connected: agent?.connected ?? false,
      ...(desiredVersion === undefined ? {} : { desiredVersion }),
      ...(agent?.ackedVersion === undefined ? {} : { ackedVersion: agent.ackedVersion }),
      ...(agent?.rejected ? { rejected: agent.rejected } : {}),
    };
  }

  onChange(listener: (pod: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** An agent for `pod` connects (with autoAck, it acks the current desired config at once). */
  connect(pod: string): void {
    const agent = this.agents.get(pod) ?? { connected: false };
    agent.connected = true;
    this.agents.set(pod, agent);
    this.emit(pod);
    if (this.autoAck && this.desired.has(pod)) queueMicrotask(() => this.ack(pod));
  }

  disconnect(pod: string): void {
    const agent = this.agents.get(pod);
    if (!agent) return;
    agent.connected = false;
    this.emit(pod);
  }

  /** The agent of `pod` acknowledges `version` (default: the desired one). */
  ack(pod: string, version = this.desired.get(pod)?.version): void {
    const agent = this.agents.get(pod);
    if (!agent?.connected || version === undefined) return;
    agent.ackedVersion = version;
    if (agent.rejected?.version === version) delete agent.rejected;
    this.emit(pod);
  }

  /** The agent of `pod` rejects `version` (default: the desired one) and keeps its previous config. */
  nack(pod: string, reason: string, version = this.desired.get(pod)?.version): void {
    const agent = this.agents.get(pod);
    if (!agent?.connected || version === undefined) return;
    agent.rejected = { version, reason };
    this.emit(pod);
  }

  /** The agent of `pod` sends a report (kept as its latest; dropped while disconnected, as the real one). */
  sendReport(pod: string, report: Partial<TestReport>): void {
    if (!this.agents.get(pod)?.connected) return;
    this.reports.set(pod, {
      appHealth: "healthy",
      inbound: undefined,
      ...report,
      upstreams: report.upstreams ?? [],
    });
    for (const l of this.reportListeners) l(pod);
  }

  report(pod: string): TestReport | undefined {
    return this.reports.get(pod);
  }

  onReport(listener: (pod: string) => void): () => void {
    this.reportListeners.add(listener);
    return () => this.reportListeners.delete(listener);
  }

  /** Connects every pod given and acks whatever they are sent from now on. */
  ackAll(pods: readonly string[]): void {
    this.autoAck = true;
    for (const pod of pods) this.connect(pod);
  }

  private emit(pod: string): void {
    for (const l of this.listeners) l(pod);
  }
}

function splitKey(pod: string): { namespace: string; name: string } {
  const i = pod.indexOf("/");
  return { namespace: pod.slice(0, i), name: pod.slice(i + 1) };
}
