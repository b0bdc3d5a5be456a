/**
 * Self time of a `.cpuprofile` (the bench's BENCH_CPU_PROF=1 writes them to bench/results/profiles) by function and
 * by file, as shares of the busy time (idle left out):
 *
 *   npx tsx bench/profile-summary.ts bench/results/profiles/<file>.cpuprofile [functions to list, 40]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

const [file, count = "40"] = process.argv.slice(2);
if (!file) throw new Error("usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [functions to list]");
const profile = JSON.parse(readFileSync(file, "utf8")) as {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
};
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let busy = 0;
let idle = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  const { functionName, url, lineNumber } = (nodes.get(id) as ProfileNode).callFrame;
  if (functionName === "(idle)") {
    idle += us;
    return;
  }
  busy += us;
  // Paths from the checkout's root (dist/ for the built service), packages by name.
  const where = url.replace(/^file:\/\/.*?\/(dist\/)?(?=src\/|bench\/|node_modules\/)/, "");
  const name = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const module = where.replace(/^node_modules\/((@[^/]+\/)?[^/]+)\/.*/, "$1") || functionName;
  byFile.set(module, (byFile.get(module) ?? 0) + us);
});

console.log(`busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`);
for (const [title, shares, top] of [
  ["by function", byFunction, Number(count)],
  ["by file", byFile, 30],
] as const) {
  console.log(`--- ${title}`);
  for (const [name, us] of [...shares].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`);
  }
}
