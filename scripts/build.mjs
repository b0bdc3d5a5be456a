// npm run build: compiles src/ and gen/ to JavaScript in dist/ (tsc, tsconfig.build.json), builds the browser
// console, then copies beside them the files the service reads at run time, at the same relative paths as in the
// repository (src/store/database.ts finds drizzle/ and scripts/app-role.sql two directories above itself, and
// src/server/console.ts finds console/dist/ so), and scripts/node.sh, the launcher with the production memory
// settings. `sh dist/scripts/node.sh dist/src/main.js` (npm run start:prod) then needs only the production
// dependencies.
import { execFileSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
});
// The browser console, built if a source changed since its last build.
execFileSync(process.execPath, [path.join(root, "scripts/build-console.mjs"), "--if-stale"], {
  cwd: root,
  stdio: "inherit",
});
cpSync(path.join(root, "console/dist"), path.join(dist, "console/dist"), { recursive: true });
cpSync(path.join(root, "drizzle"), path.join(dist, "drizzle"), { recursive: true });
cpSync(path.join(root, "scripts/app-role.sql"), path.join(dist, "scripts/app-role.sql"));
cpSync(path.join(root, "scripts/node.sh"), path.join(dist, "scripts/node.sh"));
