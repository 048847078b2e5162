// AdmissionReview v1 in, AdmissionReview v1 out: the injector and the policy validator as pure functions
// (https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#response).
import { formatProblem, validatePolicy } from "../api/validate.js";
import type { InjectorConfig } from "./injector-config.js";
import { decide, injectionPatch, type InjectionScope, type PodLike } from "./injector.js";

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  namespace?: string;
  name?: string;
  operation?: string;
  object?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: "JSONPatch";
  patch?: string;
  warnings?: string[];
  status?: { code: number; reason?: string; message: string };
}

export interface AdmissionReview {
  apiVersion: "admission.k8s.io/v1";
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

/** Reads a request out of a review body, or throws (the server answers 400). */
export function requestOf(body: unknown): AdmissionRequest {
  const req = (body as { request?: unknown } | null)?.request as AdmissionRequest | undefined;
  if (!req || typeof req.uid !== "string") throw new Error("not an AdmissionReview: request.uid missing");
  return req;
}

function review(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
}

/** The injector's answer: allowed always (an injector never blocks a pod), with a patch when it injects. */
export function injectReview(
  req: AdmissionRequest,
  config: InjectorConfig,
  scope: InjectionScope,
  operatorCaPem?: string,
): AdmissionReview {
  if (req.kind?.kind !== "Pod" || req.operation !== "CREATE" || !req.object)
    return review({ uid: req.uid, allowed: true });
  const pod = req.object as PodLike;
  const ops = injectionPatch(pod, config, scope, operatorCaPem);
  if (ops.length === 0) return review({ uid: req.uid, allowed: true });
  return review({
    uid: req.uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(ops)).toString("base64"),
  });
}

/** Why a pod was (not) injected, for logs. */
export { decide };

/** The validator's answer: the CLI's messages, one line per problem, 422 Invalid. */
export function validateReview(req: AdmissionRequest): AdmissionReview {
  if (req.operation === "DELETE") return review({ uid: req.uid, allowed: true });
  // Fail closed: a create or update without an object (or with a falsy one: 0, "", false) used to be
  // allowed unchecked; there is nothing valid to admit (found by fuzzing the webhook).
  if (req.object === undefined || req.object === null)
    return review({
      uid: req.uid,
      allowed: false,
      status: { code: 400, reason: "BadRequest", message: "request.object: required for a create or update" },
    });
  const r = validatePolicy(req.object);
  if (r.ok) return review({ uid: req.uid, allowed: true });
  const name = (req.object as { metadata?: { name?: string } }).metadata?.name ?? req.name ?? "";
  const lines = r.problems.map(formatProblem);
  return review({
    uid: req.uid,
    allowed: false,
    status: {
      code: 422,
      reason: "Invalid",
      message: `ResiliencePolicy ${req.namespace ? `${req.namespace}/` : ""}${name} is invalid: ${lines.join("; ")}`,
    },
  });
}
