/** An in-memory Lease API with resourceVersion checks and fault switches, for leader-election tests. */
import type { Lease, LeaseClient } from "../../operator/kube/leader-election.js";
import { KubeApiError } from "../../operator/kube/types.js";

export class FakeLeaseStore {
  lease: Lease | undefined;
  rv = 1;
  writes = 0;

  client(): FakeLeaseClient {
    return new FakeLeaseClient(this);
  }
}

/** One replica's view of the store; `down` makes every call fail like a partitioned network. */
export class FakeLeaseClient implements LeaseClient {
  down = false;
  constructor(private readonly store: FakeLeaseStore) {}

  private check(): void {
    if (this.down) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  }

  async get(): Promise<Lease | undefined> {
    this.check();
    return this.store.lease ? structuredClone(this.store.lease) : undefined;
  }

  async create(lease: Lease): Promise<Lease> {
    this.check();
    if (this.store.lease) throw new KubeApiError(409, "AlreadyExists");
    this.store.writes++;
    this.store.lease = {
      ...structuredClone(lease),
      metadata: { ...lease.metadata, resourceVersion: String(++this.store.rv) },
    };
    return structuredClone(this.store.lease);
  }

  async replace(lease: Lease): Promise<Lease> {
    this.check();
    if (!this.store.lease) throw new KubeApiError(404, "NotFound");
    if (lease.metadata.resourceVersion !== this.store.lease.metadata.resourceVersion) {
      throw new KubeApiError(409, "Conflict: the object has been modified");
    }
    this.store.writes++;
    this.store.lease = {
      ...structuredClone(lease),
      metadata: { ...lease.metadata, resourceVersion: String(++this.store.rv) },
    };
    return structuredClone(this.store.lease);
  }
}
