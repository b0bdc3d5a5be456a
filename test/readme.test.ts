import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestApp, type TestApp } from "./support/app.js";
import { childEnv } from "./support/child-env.js";

// The README's shell examples, run as written against a real server (issue 14, item 8), so they cannot drift from
// what the service does. The substitutions, also stated in the README:
// - `http://127.0.0.1:8080` becomes the test server's URL, and AUDIT_URL (the admin CLI's server) is set to it;
// - `.data/admin-token` becomes the file the test server logged as holding its generated token (its database is a
//   DATABASE_URL one, so the file is named after the database; see the README);
// - the placeholder line `export KEY=at_...` takes the token that `create-key` printed;
// - `curl` fails on an HTTP error status (a shell function adding --fail-with-body);
// - a block after `<!-- readme-test: skip … -->` is not run; one after `<!-- readme-test: stream … -->` is stopped
//   once its first Server-Sent Event has arrived.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const README_URL = "http://127.0.0.1:8080";

interface Block {
  line: number;
  code: string;
  mode: "run" | "skip" | "stream";
}

function shellBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== "```sh") continue;
    const marker = /<!-- readme-test: (skip|stream)\b/.exec(lines[i - 1] ?? "")?.[1] as Block["mode"] | undefined;
    const end = lines.indexOf("```", i + 1);
    blocks.push({ line: i + 1, code: lines.slice(i + 1, end).join("\n"), mode: marker ?? "run" });
    i = end;
  }
  return blocks;
}

const readme = await readFile(path.join(root, "README.md"), "utf8");
const blocks = shellBlocks(readme);

let app: TestApp;
let dataDir: string;
let tokenFile: string;
let key: string | undefined;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "audit-readme-"));
  // No AUDIT_ADMIN_TOKEN: the first start generates one into DATA_DIR/admin-token, as for a new user.
  app = await startTestApp({ env: { DATA_DIR: dataDir, AUDIT_ADMIN_TOKEN: "" } });
  const logged = app.logs.map((l) => JSON.parse(l)).find((l) => /superadmin token/.test(l.msg) && l.file);
  tokenFile = logged?.file;
  expect(tokenFile, "the first start logs where the token is").toMatch(/admin-token/);
});
afterAll(async () => {
  await app?.close();
  await rm(dataDir, { recursive: true, force: true });
});

function script(code: string): string {
  const body = code
    .replaceAll(README_URL, app.url)
    .replaceAll(".data/admin-token", tokenFile)
    .split("\n")
    .filter((line) => line.trim() !== "export KEY=at_...")
    .join("\n");
  return `set -eo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n${body}\n`;
}

function run(code: string): { child: ChildProcess; output: Promise<{ status: number | null; out: string }> } {
  const env = childEnv({ AUDIT_URL: app.url, KEY: key ?? "" });
  const child = spawn("bash", ["-c", script(code)], { cwd: root, env, detached: true });
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    out += chunk;
  });
  const output = new Promise<{ status: number | null; out: string }>((resolve) =>
    child.on("close", (status) => resolve({ status, out })),
  );
  return { child, output };
}

test("every URL in the README is a full one (curl 7.88 refuses `curl :8080/…`)", () => {
  expect(readme).not.toMatch(/(?<![\w.]):8080/);
  expect(readme).not.toContain("localhost:8080");
  // Enough blocks run that a restructured README cannot silently test nothing.
  expect(blocks.filter((b) => b.mode !== "skip").length).toBeGreaterThanOrEqual(8);
});

test.each(blocks.filter((b) => b.mode !== "skip").map((b) => [b.line, b] as const))(
  "README.md:%i runs against the service",
  async (_line, block) => {
    const { child, output } = run(block.code);
    if (block.mode === "stream") {
      // Stop once a whole event (id and data) has arrived; the stream itself never ends.
      let seen = "";
      child.stdout?.on("data", (chunk) => {
        seen += chunk;
        if (/id: \d+\ndata: \{.*\}\n\n/.test(seen) && child.pid) process.kill(-child.pid, "SIGTERM");
      });
      const { out } = await output;
      expect(seen, out).toMatch(/^id: \d+\ndata: \{"event":\{/);
      return;
    }
    const { status, out } = await output;
    expect(status, out).toBe(0);
    expect(out.trim(), "prints what the service answered").not.toBe("");
    const token = /"token": "(at_[\w-]+)"/.exec(out)?.[1];
    if (token) key = token;
    if (block.code.includes("export KEY=at_...")) expect(token, out).toBeDefined();
  },
  120_000,
);
