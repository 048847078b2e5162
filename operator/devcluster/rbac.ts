// RBAC authorisation for the dev cluster, as the real apiserver's RBAC authorizer decides it
// (https://kubernetes.io/docs/reference/access-authn-authz/rbac/): a request is allowed when any rule of a
// Role bound by a RoleBinding in the request's namespace, or of a ClusterRole bound by a ClusterRoleBinding
// (anywhere) or a RoleBinding (in that namespace), matches its verb, API group, resource[/subresource] and,
// when the rule names any, resourceName. No deny rules; no aggregation. The admin token (group
// system:masters) bypasses everything, as on a real cluster. Every authenticated user may read discovery
// (/api, /apis, /openapi, /version) and review itself (SelfSubjectReview, SelfSubjectAccessReview), what the
// default system:discovery and system:basic-user roles grant.
import type { User } from "./auth.js";
import { forbidden } from "./status.js";
import type { Store } from "./store.js";
import { isObj, str, type Obj } from "./util.js";

/** What a request asks for, in RBAC's terms. */
export interface ResourceAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** Undefined for cluster-scoped requests and for cross-namespace lists and watches. */
  namespace?: string;
  name?: string;
}

export interface Decision {
  allowed: boolean;
  /** Which binding and role allowed it ("" when denied or bypassed). */
  reason: string;
}

const ROLES = "rbac.authorization.k8s.io/roles";
const CLUSTER_ROLES = "rbac.authorization.k8s.io/clusterroles";
const ROLE_BINDINGS = "rbac.authorization.k8s.io/rolebindings";
const CLUSTER_ROLE_BINDINGS = "rbac.authorization.k8s.io/clusterrolebindings";

/** Resources every authenticated user may create (system:basic-user). */
const SELF_REVIEWS = new Set(["selfsubjectreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews"]);

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

/** Whether one PolicyRule covers the request. */
export function ruleAllows(rule: Obj, a: ResourceAttributes): boolean {
  const verbs = strings(rule.verbs);
  if (!verbs.includes("*") && !verbs.includes(a.verb)) return false;
  const groups = strings(rule.apiGroups);
  if (!groups.includes("*") && !groups.includes(a.group)) return false;
  const full = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resources = strings(rule.resources);
  // Kubernetes' ResourceMatches (rbac/v1 evaluation_helpers.go): "*" matches every resource and every
  // subresource; otherwise the exact "resource[/subresource]", or "*/subresource" for that subresource.
  const resourceOk = resources.some(
    (r) => r === "*" || r === full || (a.subresource !== undefined && r === `*/${a.subresource}`),
  );
  if (!resourceOk) return false;
  const names = strings(rule.resourceNames);
  if (names.length === 0) return true;
  return a.name !== undefined && names.includes(a.name);
}

function subjectMatches(subject: Obj, user: User, bindingNamespace: string | undefined): boolean {
  const kind = str(subject.kind);
  const name = str(subject.name) ?? "";
  if (kind === "ServiceAccount") {
    const ns = str(subject.namespace) ?? bindingNamespace ?? "";
    return user.username === `system:serviceaccount:${ns}:${name}`;
  }
  if (kind === "User") return user.username === name;
  if (kind === "Group") return user.groups.includes(name);
  return false;
}

export class RbacAuthorizer {
  constructor(private readonly store: Store) {}

  private rulesOf(roleRef: Obj, bindingNamespace: string | undefined): Obj[] {
    const kind = str(roleRef.kind);
    const name = str(roleRef.name) ?? "";
    const role =
      kind === "ClusterRole"
        ? this.store.get(CLUSTER_ROLES, undefined, name)
        : kind === "Role" && bindingNamespace !== undefined
          ? this.store.get(ROLES, bindingNamespace, name)
          : undefined;
    return role && Array.isArray(role.rules) ? role.rules.filter(isObj) : [];
  }

  private allowedBy(
    bindings: Obj[],
    user: User,
    a: ResourceAttributes,
    scope: string | undefined,
  ): string | undefined {
    for (const b of bindings) {
      const m = isObj(b.metadata) ? b.metadata : {};
      if (m.deletionTimestamp) continue;
      const subjects = Array.isArray(b.subjects) ? b.subjects.filter(isObj) : [];
      if (!subjects.some((s) => subjectMatches(s, user, scope))) continue;
      const ref = isObj(b.roleRef) ? b.roleRef : {};
      if (this.rulesOf(ref, scope).some((r) => ruleAllows(r, a)))
        return `${scope === undefined ? "ClusterRoleBinding" : "RoleBinding"} "${String(m.name)}"${scope === undefined ? "" : ` of namespace "${scope}"`} of ${String(ref.kind)} "${String(ref.name)}"`;
    }
    return undefined;
  }

  /** RBAC's answer for a resource request. */
  authorize(user: User, a: ResourceAttributes): Decision {
    if (user.groups.includes("system:masters")) return { allowed: true, reason: "system:masters" };
    if (a.group === "authorization.k8s.io" || a.group === "authentication.k8s.io") {
      if (SELF_REVIEWS.has(a.resource) && a.verb === "create")
        return { allowed: true, reason: "system:basic-user" };
    }
    const viaCluster = this.allowedBy(this.store.listRaw(CLUSTER_ROLE_BINDINGS), user, a, undefined);
    if (viaCluster) return { allowed: true, reason: viaCluster };
    if (a.namespace !== undefined) {
      const viaNs = this.allowedBy(this.store.listRaw(ROLE_BINDINGS, a.namespace), user, a, a.namespace);
      if (viaNs) return { allowed: true, reason: viaNs };
    }
    return { allowed: false, reason: "" };
  }
}

/** The 403 the real apiserver returns for a denied request. */
export function forbiddenFor(user: User, a: ResourceAttributes): ReturnType<typeof forbidden> {
  const full = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const qualified = a.group ? `${a.resource}.${a.group}` : a.resource;
  const what = a.name !== undefined ? `${qualified} "${a.name}"` : qualified;
  const where = a.namespace !== undefined ? `in the namespace "${a.namespace}"` : "at the cluster scope";
  return forbidden(
    `${what} is forbidden: User "${user.username}" cannot ${a.verb} resource "${full}" in API group "${a.group}" ${where}`,
    { group: a.group, kind: a.resource, ...(a.name !== undefined ? { name: a.name } : {}) },
  );
}

/** The RBAC verb of an HTTP request on a resource path. */
export function verbOf(method: string, hasName: boolean, watch: boolean): string {
  switch (method) {
    case "GET":
    case "HEAD":
      return hasName ? "get" : watch ? "watch" : "list";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return hasName ? "delete" : "deletecollection";
    default:
      return method.toLowerCase();
  }
}
