// Compile-time field checking of CEL rules against the schema, standing in for the typed `self` the apiserver
// declares: `self.typo` in a rule fails CRD creation with `undefined field 'typo'`, as on a real cluster.
// cel-js sees `self` as dyn, so this walks the parsed AST and follows member chains rooted at `self`/`oldSelf`
// (and comprehension variables) through `properties`, `items` and `additionalProperties`.
import {
  additionalProperties,
  isEmbeddedResource,
  items,
  preservesUnknown,
  properties,
  schemaType,
} from "./schema-node.js";
import { escapeCelField } from "./cel-names.js";
import { isPlainObject, type SchemaNode } from "./types.js";

interface AstNode {
  op: string;
  args: unknown;
}

const MACROS = new Set(["all", "exists", "exists_one", "map", "filter"]);
const ROOT_META: SchemaNode = {
  type: "object",
  properties: { name: { type: "string" }, generateName: { type: "string" } },
};

function isNode(v: unknown): v is AstNode {
  return isPlainObject(v) && typeof v.op === "string";
}

/** The schema of field `name` of an object schema; undefined when unknown (dyn); throws on an undefined field. */
function fieldOf(s: SchemaNode, name: string, isRoot: boolean): SchemaNode | undefined {
  if (isRoot && name === "metadata") return ROOT_META;
  if ((isRoot || isEmbeddedResource(s)) && (name === "apiVersion" || name === "kind"))
    return { type: "string" };
  if (isEmbeddedResource(s) && name === "metadata") return undefined;
  const props = properties(s);
  if (props) {
    const p = Object.entries(props).find(([k]) => escapeCelField(k) === name)?.[1];
    if (p) return p;
    throw new Error(`undefined field '${name}'`);
  }
  const additional = additionalProperties(s);
  if (additional) return additional;
  if (schemaType(s) === "object" && !preservesUnknown(s)) throw new Error(`undefined field '${name}'`);
  return undefined;
}

class Checker {
  constructor(
    private readonly self: SchemaNode,
    private readonly isRoot: boolean,
  ) {}

  resolve(n: unknown, scope: Map<string, SchemaNode | undefined>): SchemaNode | undefined {
    if (!isNode(n)) return undefined;
    const args = Array.isArray(n.args) ? (n.args as unknown[]) : [];
    switch (n.op) {
      case "id": {
        const name = String(n.args);
        if (scope.has(name)) return scope.get(name);
        return name === "self" || name === "oldSelf" ? this.self : undefined;
      }
      case ".":
      case ".?": {
        const base = this.resolve(args[0], scope);
        const rootBase = this.isRoot && base === this.self;
        return base && typeof args[1] === "string" ? fieldOf(base, args[1], rootBase) : undefined;
      }
      case "[]":
      case "[?]": {
        const base = this.resolve(args[0], scope);
        this.visit(args[1], scope);
        if (!base) return undefined;
        return items(base) ?? additionalProperties(base);
      }
      default:
        this.visit(n, scope);
        return undefined;
    }
  }

  visit(n: unknown, scope: Map<string, SchemaNode | undefined>): void {
    if (Array.isArray(n)) return n.forEach((x) => this.visit(x, scope));
    if (!isNode(n)) return;
    const args = Array.isArray(n.args) ? (n.args as unknown[]) : [];
    switch (n.op) {
      case "id":
        return;
      case ".":
      case ".?":
      case "[]":
      case "[?]":
        this.resolve(n, scope);
        return;
      case "rcall": {
        const [name, receiver, callArgs] = args;
        const list = Array.isArray(callArgs) ? callArgs : [];
        const first: unknown = list[0];
        if (typeof name === "string" && MACROS.has(name) && isNode(first) && first.op === "id") {
          const recv = this.resolve(receiver, scope);
          const elem = recv
            ? (items(recv) ?? (schemaType(recv) === "object" ? { type: "string" } : undefined))
            : undefined;
          const inner = new Map(scope);
          inner.set(String(first.args), elem);
          list.slice(1).forEach((a) => this.visit(a, inner));
        } else {
          this.visit(receiver, scope);
          this.visit(list, scope);
        }
        return;
      }
      default:
        for (const a of args) this.visit(a, scope);
        if (isNode(n.args)) this.visit(n.args, scope);
    }
  }
}

/** Returns `undefined field 'x'` when the expression reads a field the schema does not declare. */
export function checkRuleFields(ast: unknown, node: SchemaNode, isRoot: boolean): string | undefined {
  try {
    new Checker(node, isRoot).visit(ast, new Map());
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
