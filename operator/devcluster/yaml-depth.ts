// A cheap upper bound on how deeply a YAML text nests, read before the text is parsed. The `yaml` parser
// recurses once per level: a few hundred levels cost it a stack overflow it reports as an error, but now
// and then the overflow lands inside V8's regular-expression compiler instead, which aborts the whole
// process ("RegExpCompiler Allocation failed"). So an apply patch is refused by this bound first, at the
// same depth limit as a JSON body, and only shallower texts reach the parser.
//
// The bound counts, at every point of the text: the block levels open (an indentation stack, so any
// indentation width counts one level per step), the `- ` sequence entries that open a level on the same
// line, and the flow collections (`[` / `{`) open outside quotes and comments. It may over-count (a
// bracket inside a plain scalar), never under-count, so a refusal can only hit a text near the limit.

/** The deepest nesting the text can have; compare with the body depth limit. */
export function yamlNestingBound(text: string): number {
  const indents: number[] = [];
  let flow = 0;
  let deepest = 0;
  for (const line of text.split("\n")) {
    let i = 0;
    while (line[i] === " ") i++;
    if (i === line.length || line[i] === "#" || line[i] === "\r") continue;
    // Block structure only outside flow collections (inside them indentation means nothing).
    let levels = 0;
    if (flow === 0) {
      while (indents.length > 0 && indents[indents.length - 1]! >= i) indents.pop();
      indents.push(i);
      while ((line[i] === "-" || line[i] === "?") && (line[i + 1] === " " || line[i + 1] === undefined)) {
        levels++;
        i += 2;
        while (line[i] === " ") i++;
      }
    }
    const base = indents.length + levels;
    let quote: '"' | "'" | undefined;
    for (; i < line.length; i++) {
      const c = line[i];
      if (quote) {
        if (c === "\\" && quote === '"') i++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === "#" && (i === 0 || line[i - 1] === " " || line[i - 1] === "\t")) break;
      else if (c === "[" || c === "{") {
        flow++;
        if (base + flow > deepest) deepest = base + flow;
      } else if ((c === "]" || c === "}") && flow > 0) flow--;
    }
    if (base + flow > deepest) deepest = base + flow;
  }
  return deepest;
}
