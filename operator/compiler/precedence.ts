// Which policy wins when two set the same rule on the same pod. The winner's rule applies whole — no
// field-by-field merging a user cannot predict. Order: higher priority, then the more specific selector,
// then the older policy, then the name (namespace/name, lexical) so the result never depends on input order.
import { selectorSpecificity } from "./label-selector.js";
import type { CompilablePolicy } from "./policy.js";

/** Negative when `a` takes precedence over `b`. A total order: ties only for the same policy. */
export function comparePrecedence(a: CompilablePolicy, b: CompilablePolicy): number {
  return (
    b.spec.priority - a.spec.priority ||
    selectorSpecificity(b.spec.selector) - selectorSpecificity(a.spec.selector) ||
    compareStrings(a.createdAt, b.createdAt) ||
    compareStrings(a.key, b.key)
  );
}

/** Why `winner` beat `loser`, in words for the loser's Conflicted condition. */
export function precedenceReason(winner: CompilablePolicy, loser: CompilablePolicy): string {
  if (winner.spec.priority !== loser.spec.priority) {
    return `higher priority (${winner.spec.priority} > ${loser.spec.priority})`;
  }
  const ws = selectorSpecificity(winner.spec.selector);
  const ls = selectorSpecificity(loser.spec.selector);
  if (ws !== ls) return `more specific selector (${ws} > ${ls} requirements)`;
  if (winner.createdAt !== loser.createdAt) return "older policy";
  return "name orders first";
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
