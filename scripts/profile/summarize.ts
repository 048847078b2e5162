// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per source file, and the
// inclusive time of the heaviest functions, as shares of the non-idle samples.
//
//   npx tsx scripts/profile/summarize.ts FILE.cpuprofile [--top 40]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "40" } },
});
const top = Number(values.top);
const profile = JSON.parse(readFileSync(positionals[0]!, "utf8")) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const hits = new Map<number, number>();
for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);

const label = (n: Node) => {
  const f = n.callFrame;
  const file = f.url.replace(/^.*\/(node_modules\/|operator\/)/, "$1");
  return `${f.functionName || "(anon)"} ${file}:${f.lineNumber + 1}`;
};
const IDLE = new Set(["(idle)", "(program)", "(garbage collector)"]);
let busy = 0;
let gc = 0;
const self = new Map<string, number>();
const selfFile = new Map<string, number>();
const incl = new Map<string, number>();
for (const [id, h] of hits) {
  const n = byId.get(id)!;
  const name = n.callFrame.functionName;
  if (name === "(idle)" || name === "(program)") continue;
  if (name === "(garbage collector)") gc += h;
  busy += h;
  self.set(label(n), (self.get(label(n)) ?? 0) + h);
  const file = n.callFrame.url.replace(/^.*\/(node_modules\/[^/]+|operator\/[^/]+\/[^/]+)/, "$1") || name;
  selfFile.set(file, (selfFile.get(file) ?? 0) + h);
  // Inclusive: count each distinct function once per sample stack.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur)!;
    if (IDLE.has(node.callFrame.functionName) || node.callFrame.functionName === "(root)") continue;
    const l = label(node);
    if (seen.has(l)) continue;
    seen.add(l);
    incl.set(l, (incl.get(l) ?? 0) + h);
  }
}
const pct = (v: number) => `${((100 * v) / busy).toFixed(1).padStart(5)}%`;
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n== ${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
};
console.log(`busy samples ${busy} (gc ${pct(gc)})`);
show("self time by function", self);
show("self time by file", selfFile);
show("inclusive time by function", incl);
