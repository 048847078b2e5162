/**
 * The few Kubernetes shapes the kube layer needs, as plain JSON (what the API server sends on the
 * wire and what client-node's `Watch` hands over unparsed). Kept minimal so tests build objects
 * by hand and nothing here depends on client-node's generated model classes.
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  finalizers?: string[];
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

/** One page of a list response. */
export interface ListPage<T extends KubeObject = KubeObject> {
  items: T[];
  /** The collection's resourceVersion: the point to watch from. */
  resourceVersion: string;
  /** The continue token for the next page, when there is one. */
  continueToken?: string;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** A Kubernetes `Status` object, as sent in a watch ERROR event or an error response body. */
export interface KubeStatus {
  kind?: "Status";
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

/** An error from the API server with its HTTP status code (404, 409, 410, 5xx…). */
export class KubeApiError extends Error {
  readonly statusCode: number;
  readonly reason: string | undefined;
  readonly body: unknown;

  constructor(
    statusCode: number,
    message: string,
    options?: { reason?: string; body?: unknown; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.name = "KubeApiError";
    this.statusCode = statusCode;
    this.reason = options?.reason;
    this.body = options?.body;
  }
}

/** The HTTP status code carried by an error (ours, client-node's `statusCode`/`code`), if any. */
export function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { statusCode?: unknown; code?: unknown };
  if (typeof e.statusCode === "number") return e.statusCode;
  if (typeof e.code === "number") return e.code;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCodeOf(err) === 404;
export const isConflict = (err: unknown): boolean => statusCodeOf(err) === 409;
export const isGone = (err: unknown): boolean => statusCodeOf(err) === 410;

/** `namespace/name`, or `name` for cluster-scoped objects: the work-queue key convention. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}
