// npm run build:console: builds the browser console (console/) with Vite into console/dist/, which
// src/server/console.ts serves at /console/. With --if-stale (npm start, npm run build, the browser tests) it builds
// only when a source is newer than the last build, so a start costs nothing when nothing changed.
//
// AUDIT_CONSOLE_API_URL: the service the page calls (e.g. https://audit.example.com); unset means the origin that
// serves the page. See README "Browser console" for hosting the page elsewhere (the service's CORS_ORIGINS).
import { readdirSync, renameSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const served = path.join(root, "console/dist");
// --out=<dir>: a copy built elsewhere, say for another origin (the browser tests build one); never stale-checked.
const outArg = process.argv.find((a) => a.startsWith("--out="));
const out = outArg ? path.resolve(outArg.slice("--out=".length)) : served;

/** The newest modification time under `dir` (a file or folder, 0 if absent), skipping console/dist. */
function newest(dir) {
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = 0;
  for (const name of readdirSync(dir)) {
    if (path.join(dir, name) === served) continue;
    latest = Math.max(latest, newest(path.join(dir, name)));
  }
  return latest;
}

function built() {
  try {
    return statSync(path.join(out, "index.html")).mtimeMs;
  } catch {
    return 0;
  }
}

const sources = ["console", "gen/audit", "scripts/build-console.mjs", "package-lock.json"].map((p) =>
  path.join(root, p),
);
if (!outArg && process.argv.includes("--if-stale") && built() >= Math.max(...sources.map(newest))) process.exit(0);

// Built beside the output and moved into place, so a server reading console/dist never sees half a build.
const staging = `${out}.building-${process.pid}`;
const { build } = await import("vite");
await build({
  root: path.join(root, "console"),
  base: "./",
  logLevel: "warn",
  configFile: false,
  define: { __AUDIT_API_URL__: JSON.stringify(process.env.AUDIT_CONSOLE_API_URL ?? "") },
  build: { outDir: staging, emptyOutDir: true, assetsDir: "assets", target: "es2022", reportCompressedSize: false },
});
rmSync(out, { recursive: true, force: true });
renameSync(staging, out);
