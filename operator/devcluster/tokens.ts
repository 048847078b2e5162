// TokenRequest (`POST serviceaccounts/<name>/token`) and TokenReview (`POST tokenreviews`), as in
// https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/ and
// https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/.
import { ISSUER, saUser, type Authenticator } from "./auth.js";
import { badRequest, invalid, notFound } from "./status.js";
import type { Store } from "./store.js";
import { isObj, meta, nowTime, str, type Obj } from "./util.js";

export function tokenRequest(
  store: Store,
  auth: Authenticator,
  ns: string,
  saName: string,
  body: unknown,
): Obj {
  const sa = store.get("/serviceaccounts", ns, saName);
  if (!sa) throw notFound("", "serviceaccounts", saName);
  const spec = isObj(body) && isObj(body.spec) ? body.spec : {};
  const audiences =
    Array.isArray(spec.audiences) && spec.audiences.length > 0 ? spec.audiences.map(String) : [ISSUER];
  const expirationSeconds = spec.expirationSeconds === undefined ? 3600 : Number(spec.expirationSeconds);
  if (!Number.isInteger(expirationSeconds) || expirationSeconds < 600)
    throw invalid("authentication.k8s.io", "TokenRequest", saName, [
      {
        reason: "FieldValueInvalid",
        message: "Invalid value: may not specify a duration less than 10 minutes",
        field: "spec.expirationSeconds",
      },
    ]);
  const claims: Parameters<Authenticator["issue"]>[0] = {
    aud: audiences,
    exp: Math.floor(Date.now() / 1000) + expirationSeconds,
    "kubernetes.io": { namespace: ns, serviceaccount: { name: saName, uid: String(meta(sa).uid) } },
  };
  const bound = isObj(spec.boundObjectRef) ? spec.boundObjectRef : undefined;
  if (bound) {
    const kind = str(bound.kind);
    const name = str(bound.name) ?? "";
    if (kind !== "Pod" && kind !== "Secret")
      throw badRequest(`cannot bind token to object of kind ${String(kind)}; supported kinds: Pod, Secret`);
    const obj = store.get(kind === "Pod" ? "/pods" : "/secrets", ns, name);
    if (!obj) throw notFound("", kind === "Pod" ? "pods" : "secrets", name);
    const objUid = String(meta(obj).uid);
    if (bound.uid !== undefined && bound.uid !== "" && bound.uid !== objUid)
      throw badRequest(
        `the UID in the bound object reference (${String(bound.uid)}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    if (kind === "Pod") claims["kubernetes.io"].pod = { name, uid: objUid };
    else claims["kubernetes.io"].secret = { name, uid: objUid };
  }
  const token = auth.issue(claims);
  return {
    kind: "TokenRequest",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { name: saName, namespace: ns, creationTimestamp: null },
    spec: { audiences, expirationSeconds, boundObjectRef: bound ?? null },
    status: { token, expirationTimestamp: nowTime(new Date(claims.exp * 1000)) },
  };
}

export function tokenReview(store: Store, auth: Authenticator, body: unknown): Obj {
  const spec = isObj(body) && isObj(body.spec) ? body.spec : {};
  const token = str(spec.token) ?? "";
  const wanted = Array.isArray(spec.audiences) ? spec.audiences.map(String) : [];
  const result: Obj = {
    kind: "TokenReview",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { creationTimestamp: null },
    spec,
  };
  const fail = (error: string) => ({ ...result, status: { authenticated: false, error, user: {} } });
  if (auth.isAdmin(token)) {
    return {
      ...result,
      status: {
        authenticated: true,
        user: { username: "bulwark-admin", groups: ["system:masters", "system:authenticated"] },
        audiences: wanted.length > 0 ? wanted : [ISSUER],
      },
    };
  }
  const claims = auth.verifySa(token);
  if (!claims) return fail("invalid bearer token");
  const audiences = wanted.length > 0 ? wanted.filter((a) => claims.aud.includes(a)) : claims.aud;
  if (audiences.length === 0) return fail("token audiences do not match the requested audiences");
  const k = claims["kubernetes.io"];
  const sa = store.get("/serviceaccounts", k.namespace, k.serviceaccount.name);
  if (!sa || meta(sa).uid !== k.serviceaccount.uid)
    return fail("service account has been deleted or recreated");
  if (k.pod) {
    const pod = store.get("/pods", k.namespace, k.pod.name);
    if (!pod || meta(pod).uid !== k.pod.uid)
      return fail(`pod ${k.namespace}/${k.pod.name} has been deleted or recreated`);
  }
  if (k.secret) {
    const s = store.get("/secrets", k.namespace, k.secret.name);
    if (!s || meta(s).uid !== k.secret.uid) return fail("secret has been deleted or recreated");
  }
  return { ...result, status: { authenticated: true, user: saUser(claims), audiences } };
}
