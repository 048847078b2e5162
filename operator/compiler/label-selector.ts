// Kubernetes LabelSelector semantics (apimachinery labels.Selector): matchLabels and every
// matchExpression must hold; an empty selector matches everything.
import type { PodSelector } from "../api/selector.js";

export function selectorMatches(selector: PodSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case "In":
        if (!has || !(req.values ?? []).includes(value as string)) return false;
        break;
      case "NotIn":
        // As in Kubernetes: a pod without the key satisfies NotIn.
        if (has && (req.values ?? []).includes(value as string)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

/**
 * How narrowly a selector picks pods, for precedence: the number of requirements it states.
 * A selector with more requirements selects a subset of what a looser one may, so it is the more specific.
 */
export function selectorSpecificity(selector: PodSelector): number {
  return Object.keys(selector.matchLabels ?? {}).length + (selector.matchExpressions?.length ?? 0);
}
