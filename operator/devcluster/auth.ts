// Bearer-token authentication: one admin token (the kubeconfig's), plus ServiceAccount tokens the server
// issues through TokenRequest (`serviceaccounts/<name>/token`) and verifies for TokenReview
// (https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/).
// ServiceAccount tokens are JWTs signed with HS256 under a per-cluster key (a real cluster uses RS256;
// clients treat the token as opaque, so only the claims' shape matters).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface User {
  username: string;
  uid: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface SaClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  "kubernetes.io": {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
    secret?: { name: string; uid: string };
  };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

export class Authenticator {
  readonly adminToken: string;
  private readonly key: Buffer;

  constructor(opts: { adminToken?: string; signingKey?: Buffer } = {}) {
    this.adminToken = opts.adminToken ?? randomBytes(24).toString("hex");
    this.key = opts.signingKey ?? randomBytes(32);
  }

  get signingKey(): Buffer {
    return this.key;
  }

  /** Issues a ServiceAccount token (the TokenRequest subresource). */
  issue(claims: Omit<SaClaims, "iss" | "iat" | "nbf" | "jti" | "sub">): string {
    const now = Math.floor(Date.now() / 1000);
    const full: SaClaims = {
      iss: ISSUER,
      sub: `system:serviceaccount:${claims["kubernetes.io"].namespace}:${claims["kubernetes.io"].serviceaccount.name}`,
      iat: now,
      nbf: now,
      jti: randomBytes(8).toString("hex"),
      ...claims,
    };
    const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT", kid: "bulwark-dev" }));
    const body = b64url(JSON.stringify(full));
    const sig = createHmac("sha256", this.key).update(`${head}.${body}`).digest("base64url");
    return `${head}.${body}.${sig}`;
  }

  /** Verifies a ServiceAccount token's signature and lifetime; returns its claims. */
  verifySa(token: string): SaClaims | undefined {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    const [head, body, sig] = parts as [string, string, string];
    const want = createHmac("sha256", this.key).update(`${head}.${body}`).digest();
    const got = Buffer.from(sig, "base64url");
    if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
    let claims: SaClaims;
    try {
      claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as SaClaims;
    } catch {
      return undefined;
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp < now || claims.nbf > now + 60) return undefined;
    return claims;
  }

  isAdmin(token: string): boolean {
    const a = Buffer.from(token);
    const b = Buffer.from(this.adminToken);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** The user behind an Authorization header, or undefined (401). */
  authenticate(header: string | undefined): User | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!m?.[1]) return undefined;
    const token = m[1];
    if (this.isAdmin(token))
      return { username: "bulwark-admin", uid: "", groups: ["system:masters", "system:authenticated"] };
    const c = this.verifySa(token);
    if (!c) return undefined;
    return saUser(c);
  }
}

export function saUser(c: SaClaims): User {
  const k = c["kubernetes.io"];
  const user: User = {
    username: c.sub,
    uid: k.serviceaccount.uid,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${k.namespace}`, "system:authenticated"],
  };
  if (k.pod) {
    user.extra = {
      "authentication.kubernetes.io/pod-name": [k.pod.name],
      "authentication.kubernetes.io/pod-uid": [k.pod.uid],
    };
  }
  return user;
}
