import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Screenshots of the main views, kept as test artifacts (git-ignored). */
export const ARTIFACTS = path.join(root, "test-results/console");

/**
 * Debian's chromium (what .ci/run installs with apt), or CHROMIUM_PATH for another Chromium or Chrome. Without one the
 * browser tests fail, saying how to get it: on a developer's machine as in CI, a browser suite that does not run is
 * not a pass.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * Builds the console if a source changed since the last build (as npm start does), so the tests serve the current
 * page; or, with `elsewhere`, a copy into that folder that calls the service at `apiUrl` from another origin.
 */
export function buildConsole(elsewhere?: { out: string; apiUrl: string }) {
  const args = elsewhere ? [`--out=${elsewhere.out}`] : ["--if-stale"];
  execFileSync(process.execPath, [path.join(root, "scripts/build-console.mjs"), ...args], {
    cwd: root,
    stdio: "inherit",
    env: elsewhere ? { ...process.env, AUDIT_CONSOLE_API_URL: elsewhere.apiUrl } : process.env,
  });
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: the console's browser tests need one. Install Debian's with ` +
        "`apt-get install -y chromium` (as .ci/run does), or set CHROMIUM_PATH to a Chromium or Chrome binary",
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  // launch() gives each browser a fresh temporary user-data-dir, removed on close.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A page in a context of its own, with everything that went wrong in it recorded. */
export interface WatchedPage {
  page: Page;
  /** Console errors, uncaught exceptions, failed requests and HTTP error answers, as text. */
  problems: string[];
  close(): Promise<void>;
}

/**
 * `allow` lets a test name requests that are expected to fail (a connection the test cuts). A request the page
 * cancels itself (net::ERR_ABORTED: a tail stream stopped, a page left) is not a failure.
 */
export async function openPage(
  browser: Browser,
  options: BrowserContextOptions = {},
  allow: (url: string) => boolean = () => false,
): Promise<WatchedPage> {
  const context = await browser.newContext({ timezoneId: "UTC", acceptDownloads: true, ...options });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const url = message.location().url;
    if (/Failed to load resource/.test(message.text()) && allow(url)) return;
    problems.push(`console error: ${message.text()} (${url})`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) => {
    const reason = request.failure()?.errorText ?? "";
    if (reason === "net::ERR_ABORTED" || allow(request.url())) return;
    problems.push(`request failed: ${request.method()} ${request.url()} ${reason}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  return {
    page,
    problems,
    async close() {
      page.removeAllListeners();
      await context.close();
    },
  };
}
