/**
 * A ConfigDistributor that only holds the desired state and serves no agent: every pod reads as
 * "no agent connected", so policies report their pods pending. It stands in when `bulwark operator`
 * runs without the distribution server (until that lands, and in tests of the loop alone); swap
 * in the real one through `startOperator({ distributor })`.
 */
import type { SidecarConfig } from "../api/sidecar-config.js";
import type { ConfigDistributor, PodPropagation } from "../distribution/config-distributor.js";

export class DesiredStateDistributor implements ConfigDistributor {
  private readonly desired = new Map<string, SidecarConfig | undefined>();

  setDesired(pod: string, config: SidecarConfig | undefined): void {
    if (config === undefined) this.desired.delete(pod);
    else this.desired.set(pod, config);
  }

  propagation(pod: string): PodPropagation {
    const version = this.desired.get(pod)?.version;
    return { connected: false, ...(version === undefined ? {} : { desiredVersion: version }) };
  }

  onChange(): () => void {
    return () => undefined;
  }

  /** The config desired for `pod`, if any. */
  config(pod: string): SidecarConfig | undefined {
    return this.desired.get(pod);
  }
}
