/**
 * Plugs the real distribution server (operator/distribution/distribution-server.ts) into
 * `startOperator`: a factory that starts it on the distribution port with TokenReview
 * authentication over the operator's own client and the operator's metrics registry (so
 * `bulwark_agents_connected` and the `bulwark_distribution_*` families are on /metrics), and stops
 * it last on shutdown.
 */
import { TokenReviewAuthenticator } from "../distribution/agent-authenticator.js";
import type { DistributionServer } from "../distribution/distribution-server.js";
import { startDistributionServer } from "../distribution/distribution-server.js";
import type { DistributorContext, ManagedDistributor } from "./operator.js";

export interface DistributionOptions {
  /** Listen address. Defaults to 0.0.0.0. */
  host?: string;
  /** PEM certificate and key: serve TLS; plain HTTP without. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Sent to agents in welcome. Defaults to "operator". */
  operatorId?: string;
  /** Called with the server once it listens (its URL, stats, reports). */
  onStarted?(server: DistributionServer): void;
  log?(event: string, fields: Record<string, unknown>): void;
}

export function distributionServerFactory(
  opts: DistributionOptions = {},
): (ctx: DistributorContext) => Promise<ManagedDistributor> {
  return async (ctx) => {
    const server = await startDistributionServer({
      port: ctx.distributionPort,
      host: opts.host ?? "0.0.0.0",
      // --tls-cert/--tls-key win; else the webhooks' certificate (the chart's Service names), else plain HTTP.
      ...(opts.tls
        ? { tls: opts.tls }
        : ctx.servingTls
          ? { tls: { cert: Buffer.from(ctx.servingTls.certPem), key: Buffer.from(ctx.servingTls.keyPem) } }
          : {}),
      authenticator: new TokenReviewAuthenticator(ctx.kubeClient),
      metrics: ctx.metrics,
      clock: ctx.clock,
      accepting: ctx.isLeader,
      ...(opts.operatorId ? { operatorId: opts.operatorId } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    opts.onStarted?.(server);
    return {
      setDesired: (pod, config) => server.setDesired(pod, config),
      propagation: (pod) => server.propagation(pod),
      onChange: (listener) => server.onChange(listener),
      forget: (pod) => server.forget(pod),
      report: (pod) => server.report(pod),
      onReport: (listener) => server.onReport((pod) => listener(pod)),
      stop: () => server.close(),
    };
  };
}
