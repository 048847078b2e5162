// Where everything of `bulwark up` listens and lives: the ports (with the name and flag a user needs when one
// is taken), the demo's pods and services, and the paths under the state dir.
import { join, resolve } from "node:path";

export const NAMESPACE = "shop";
/** The app port the demo policies name (`inbound.port`); see pod-network.ts for how each pod keeps its own. */
export const POLICY_APP_PORT = 8080;

export type ServiceName = "checkout" | "payments" | "inventory";
export const SERVICES: readonly ServiceName[] = ["checkout", "payments", "inventory"];

export interface PodLayout {
  readonly name: string;
  readonly app: ServiceName;
  readonly index: number;
  readonly adminPort: number;
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly appPort: number;
}

export interface Layout {
  readonly stateDir: string;
  readonly clusterPort: number;
  readonly metricsPort: number;
  readonly healthPort: number;
  readonly distributionPort: number;
  /** Prometheus, started when the binary is on PATH; 0: never. */
  readonly prometheusPort: number;
  /** Each service's "ClusterIP" (a round-robin forwarder to its ready pods' inbound ports). */
  readonly servicePorts: Readonly<Record<ServiceName, number>>;
  readonly pods: readonly PodLayout[];
}

export interface LayoutOptions {
  stateDir: string;
  clusterPort: number;
  metricsPort: number;
  healthPort: number;
  distributionPort: number;
  prometheusPort: number;
  portBase: number;
  /** checkout pods; payments and inventory have 2 each. */
  pods: number;
}

/** Port plan: services at base+0..2; pod i at base+10+10·i (+0 admin, +1 outbound, +2 inbound, +3 app). */
export function planLayout(o: LayoutOptions): Layout {
  const counts: Record<ServiceName, number> = {
    checkout: o.pods,
    payments: 2,
    inventory: 2,
  };
  const pods: PodLayout[] = [];
  for (const app of SERVICES) {
    for (let index = 0; index < counts[app]; index++) {
      const base = o.portBase + 10 + 10 * pods.length;
      pods.push({
        name: `${app}-${index}`,
        app,
        index,
        adminPort: base,
        outboundPort: base + 1,
        inboundPort: base + 2,
        appPort: base + 3,
      });
    }
  }
  return {
    stateDir: resolve(o.stateDir),
    clusterPort: o.clusterPort,
    metricsPort: o.metricsPort,
    healthPort: o.healthPort,
    distributionPort: o.distributionPort,
    prometheusPort: o.prometheusPort,
    servicePorts: { checkout: o.portBase, payments: o.portBase + 1, inventory: o.portBase + 2 },
    pods,
  };
}

/** Every port with what a user reads when it is taken. */
export function namedPorts(l: Layout): { port: number; name: string; flag: string }[] {
  const out: { port: number; name: string; flag: string }[] = [
    { port: l.clusterPort, name: "dev cluster API", flag: "--cluster-port" },
    { port: l.metricsPort, name: "operator metrics", flag: "--metrics-port" },
    { port: l.healthPort, name: "operator health", flag: "--health-port" },
    { port: l.distributionPort, name: "operator distribution", flag: "--distribution-port" },
    { port: l.prometheusPort, name: "Prometheus", flag: "--prometheus-port" },
  ];
  for (const s of Object.keys(l.servicePorts) as ServiceName[])
    out.push({ port: l.servicePorts[s], name: `${s} service`, flag: "--port-base" });
  for (const p of l.pods) {
    out.push({ port: p.adminPort, name: `${p.name} agent admin`, flag: "--port-base" });
    out.push({ port: p.outboundPort, name: `${p.name} agent outbound`, flag: "--port-base" });
    out.push({ port: p.inboundPort, name: `${p.name} agent inbound`, flag: "--port-base" });
    out.push({ port: p.appPort, name: `${p.name} app`, flag: "--port-base" });
  }
  return out.filter((p) => p.port !== 0);
}

export const paths = (stateDir: string) => ({
  kubeconfig: join(stateDir, "kubeconfig"),
  prometheus: join(stateDir, "prometheus.yml"),
  /** Everything of one run; removed when the next run starts. */
  run: join(stateDir, "demo"),
  pids: join(stateDir, "demo", "pids.json"),
  logs: join(stateDir, "demo", "logs"),
  tokens: join(stateDir, "demo", "tokens"),
  agentState: (pod: string) => join(stateDir, "demo", "agents", pod),
  policies: join(stateDir, "demo", "policies.yaml"),
  prometheusData: join(stateDir, "demo", "prometheus"),
});
