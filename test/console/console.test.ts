import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Browser, Page } from "playwright-core";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService, type ListRequestSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { consoleHandler } from "../../src/server/console.js";
import type { NodeHandler } from "../../src/server/listener.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant, type TenantTokens } from "../support/clients.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { ARTIFACTS, buildConsole, launchChromium, openPage, type WatchedPage } from "./browser.js";

let app: TestApp;
let acme: TenantTokens;
let browser: Browser;
/** The service behind a TCP proxy the tests can cut, for the lost-connection cases. */
let proxy: TcpProxy;
let proxied: string;
/** Another origin serving a copy of the console built to call the service: hosting it elsewhere with CORS_ORIGINS. */
let elsewhere: http.Server;
let elsewhereUrl: string;
let elsewhereDir: string;
const PASSWORD = "correct horse battery";

/** gRPC (HTTP/2) from Node: "another client" writing while the browser reads. */
const writer = () => clientFor(AuditService, app, "grpc", acme.writer);
const reader = () => clientFor(AuditService, app, "connect", acme.reader);

/** 80 events over the last 20 hours in varied actions, actors, targets, outcomes and sources; a parent with children. */
async function seed() {
  const now = Date.now();
  const events = Array.from({ length: 80 }, (_, i) => ({
    id: `ev-${String(i).padStart(3, "0")}`,
    occurredAt: timestampFromMs(now - (80 - i) * 15 * 60_000),
    action: ["invoice.create", "invoice.pay", "user.login", "project.delete"][i % 4] as string,
    category: i % 5 === 0 ? "billing" : "",
    source: i % 2 === 0 ? "web" : "api",
    actor: { id: `u${i % 3}`, name: ["Ann", "Bob", "Cy"][i % 3] as string, type: "user" },
    target: { id: `t${i % 4}`, type: i % 2 === 0 ? "invoice" : "project" },
    outcome: { status: i % 7 === 0 ? OutcomeStatus.FAILURE : OutcomeStatus.SUCCESS },
    attributes: { amount: i * 10, currency: "EUR", tags: ["a", "b"] },
  }));
  await writer().batchCreate({ events });
  await writer().batchCreate({
    events: [
      { id: "job-1", action: "job.run", actor: { id: "cron" } },
      { id: "job-1-step-a", action: "job.step", parentId: "job-1" },
      { id: "job-1-step-b", action: "job.step", parentId: "job-1" },
    ],
  });
  const adminClient = clientFor(AdminService, app, "connect", acme.admin);
  await adminClient.createEventTemplate({ template: { name: "invoice.voided" } });
  await clientFor(AuditService, app, "connect", acme.writer).publish({ eventName: "invoice.voided", id: "pub-1" });
}

beforeAll(async () => {
  buildConsole();
  browser = await launchChromium();
  elsewhereDir = await mkdtemp(path.join(tmpdir(), "console-elsewhere-"));
  // Its page may call the service: the service's address is known once it has started, below.
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  elsewhere = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
  elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  // Credentials are read on every call, so an expired key is refused at once; a tail more than 20 events behind is
  // cut off as too slow, so one batch can do it.
  app = await startTestApp({
    env: { CREDENTIAL_CACHE_MS: "0", TAIL_BUFFER_EVENTS: "20", CORS_ORIGINS: elsewhereUrl },
  });
  buildConsole({ out: elsewhereDir, apiUrl: app.url });
  const notFound: NodeHandler = (_req, res) => (res as http.ServerResponse).writeHead(404).end();
  handler = consoleHandler(notFound, { dir: `${elsewhereDir}/`, connectSrc: app.url }) as http.RequestListener;
  acme = await provisionTenant(app, "acme");
  const globex = await provisionTenant(app, "globex");
  await clientFor(AuditService, app, "connect", globex.writer).create({ event: { id: "globex-only", action: "x" } });
  await clientFor(AdminService, app, "connect", acme.admin).createUser({
    username: "ann",
    password: PASSWORD,
    roles: [Role.READER],
  });
  proxy = new TcpProxy({ host: "127.0.0.1", port: app.port });
  await proxy.start();
  proxied = `http://127.0.0.1:${proxy.port}`;
  await seed();
});
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => elsewhere?.close(resolve));
  if (elsewhereDir) await rm(elsewhereDir, { recursive: true, force: true });
  await proxy?.cut();
  await app?.close();
});

let current: WatchedPage | undefined;
async function open(options?: Parameters<typeof openPage>[1], allow?: Parameters<typeof openPage>[2]) {
  current = await openPage(browser, options, allow);
  return current.page;
}
afterEach(async () => {
  const problems = current?.problems ?? [];
  await current?.close();
  current = undefined;
  expect(problems, "the page logged errors or had failed requests").toEqual([]);
});

type ListFields = Omit<MessageInitShape<typeof ListRequestSchema>, "$typeName">;

const rowIds = (page: Page) => page.locator("#rows tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.id));

/** Every id List gives for the request, newest first, over all pages. */
async function listIds(request: ListFields, pageSize = 50): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const page = await reader().list({ ...request, pageSize, pageToken });
    ids.push(...page.events.map((e) => e.id));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return ids;
}

async function signInWithKey(page: Page, token: string, url = `${app.url}/console/`) {
  await page.goto(url);
  await page.getByLabel("API key or session token").fill(token);
  await page.getByRole("button", { name: "Sign in with key" }).click();
  await expect.poll(() => page.locator("#events").isVisible()).toBe(true);
}

describe("serving", () => {
  test("index.html is never cached, hashed assets are cached for a year, with their content types", async () => {
    const index = await fetch(`${app.url}/console/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("cache-control")).toBe("no-store");
    expect(index.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await index.text();
    const assets = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.some((a) => a.endsWith(".js"))).toBe(true);
    expect(assets.some((a) => a.endsWith(".css"))).toBe(true);
    for (const asset of assets) {
      expect(asset).toMatch(/-[A-Za-z0-9_-]{8}\.(js|css)$/);
      const response = await fetch(`${app.url}/console/${asset}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(response.headers.get("content-encoding")).toBe("gzip");
      expect(response.headers.get("content-type")).toBe(
        asset.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8",
      );
    }
    const redirect = await fetch(`${app.url}/console?action=x`, { redirect: "manual" });
    expect([redirect.status, redirect.headers.get("location")]).toEqual([308, "/console/?action=x"]);
    expect((await fetch(`${app.url}/console/assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${app.url}/console/assets/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${app.url}/console/`, { method: "POST" })).status).toBe(405);
  });
});

describe("in Chromium", () => {
  test("sign in with an API key: events written over gRPC by another client are listed, newest first", async () => {
    const page = await open();
    await page.goto(`${app.url}/console/`);
    await page.screenshot({ path: path.join(ARTIFACTS, "sign-in.png") });
    await signInWithKey(page, acme.reader, `${app.url}/console/`);
    await expect.poll(() => rowIds(page)).toEqual((await listIds({})).slice(0, 50));
    expect(page.url()).not.toContain(acme.reader);
    // Only a superadmin picks a tenant.
    expect(await page.locator("#tenant-picker").isVisible()).toBe(false);
    // The token is in this tab's sessionStorage, nowhere else.
    expect(await page.evaluate("localStorage.length")).toBe(0);
    await expect.poll(() => page.locator("#chart svg rect").count()).toBeGreaterThan(0);
    // The README's picture (docs/console.png is a copy of one): the window as a person first sees it.
    await page.screenshot({ path: path.join(ARTIFACTS, "events.png") });
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect.poll(() => page.locator("#sign-in").isVisible()).toBe(true);
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
  });

  test("sign in with tenant, user name and password (Login); a wrong password says so", async () => {
    const page = await open();
    await page.goto(`${app.url}/console/`);
    const login = page.locator("#login-form");
    await login.getByLabel("Tenant").fill("acme");
    await login.getByLabel("User name").fill("ann");
    await login.getByLabel("Password").fill("wrong password");
    await login.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("Wrong tenant, user name or password");
    await login.getByLabel("Password").fill(PASSWORD);
    await login.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => rowIds(page)).toEqual((await listIds({})).slice(0, 50));
    expect(await page.locator("#who").textContent()).toContain("ann");
    expect(await page.evaluate('sessionStorage.getItem("audit-console.token")')).toMatch(/^ats_/);
  });

  const filters: [string, Record<string, string>, ListFields][] = [
    ["action prefix", { action: "invoice.*" }, { actions: ["invoice.*"] }],
    ["exact actions", { action: "user.login, project.delete" }, { actions: ["user.login", "project.delete"] }],
    ["actor id", { actor: "u1" }, { actorId: "u1" }],
    ["actor name", { actorName: "Cy" }, { actorName: "Cy" }],
    ["target", { target: "t2", targetType: "invoice" }, { targetId: "t2", targetType: "invoice" }],
    ["outcome", { outcome: "failure" }, { outcome: OutcomeStatus.FAILURE }],
    ["source", { source: "api" }, { source: "api" }],
    ["category", { category: "billing" }, { category: "billing" }],
    ["event name", { eventName: "invoice.voided" }, { eventName: "invoice.voided" }],
    ["children of an event", { parent: "job-1" }, { parentId: "job-1" }],
    ["include children", { children: "1" }, { includeChildren: true }],
  ];

  test("each filter selects what List selects, and is in the URL; a bookmarked URL reloads to the same view", async () => {
    const page = await open();
    await signInWithKey(page, acme.reader);
    const form = page.locator("#filters");
    for (const [label, fields, request] of filters) {
      await page.getByRole("button", { name: "Clear" }).click();
      for (const [name, value] of Object.entries(fields)) {
        const input = form.locator(`[name="${name}"]`);
        if (name === "outcome") await input.selectOption(value);
        else if (name === "children") await input.check();
        else await input.fill(value);
      }
      await page.getByRole("button", { name: "Apply" }).click();
      const expected = (await listIds(request)).slice(0, 50);
      expect(expected.length, label).toBeGreaterThan(0);
      await expect.poll(() => rowIds(page), { message: label }).toEqual(expected);
      const params = new URL(page.url()).searchParams;
      for (const [name, value] of Object.entries(fields)) expect(params.get(name), label).toBe(value);
    }
    // A time range: the last 2 hours as a custom range, then a quick pick.
    const from = new Date(Date.now() - 2 * 3600_000).toISOString().slice(0, 19);
    await page.goto(`${app.url}/console/?range=custom&from=${from}&actor=u0`);
    const expected = await listIds({ actorId: "u0", startTime: timestampFromMs(Date.parse(`${from}Z`)) });
    expect(expected.length).toBeGreaterThan(0);
    await expect.poll(() => rowIds(page)).toEqual(expected);
    // A datetime-local input normalises its value: seconds are left out when they are zero.
    expect(await form.locator('[name="from"]').inputValue()).toBe(from.endsWith(":00") ? from.slice(0, 16) : from);
    await form.locator('[name="range"]').selectOption("1h");
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get("range")).toBe("1h");
    expect(new URL(page.url()).searchParams.get("from")).toBeNull();
    // Bookmark: a filtered URL opened afresh (the token survives a reload of the tab, not the URL).
    await page.goto(`${app.url}/console/?action=invoice.*&source=web`);
    const bookmarked = (await listIds({ actions: ["invoice.*"], source: "web" })).slice(0, 50);
    await expect.poll(() => rowIds(page)).toEqual(bookmarked);
    await page.reload();
    await expect.poll(() => rowIds(page)).toEqual(bookmarked);
    expect(await form.locator('[name="action"]').inputValue()).toBe("invoice.*");
    expect(await form.locator('[name="source"]').inputValue()).toBe("web");
    expect(page.url()).not.toContain(acme.reader);
  });

  test("keyset paging: older and newer pages are List's pages", async () => {
    const page = await open();
    await signInWithKey(page, acme.reader, `${app.url}/console/?children=1`);
    const all = await listIds({ includeChildren: true });
    expect(all.length).toBeGreaterThan(50);
    await expect.poll(() => rowIds(page)).toEqual(all.slice(0, 50));
    expect(await page.locator("#newer").isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Older →" }).click();
    await expect.poll(() => rowIds(page)).toEqual(all.slice(50, 100));
    expect(await page.locator("#older").isDisabled()).toBe(all.length <= 100);
    await page.getByRole("button", { name: "← Newer" }).click();
    await expect.poll(() => rowIds(page)).toEqual(all.slice(0, 50));
  });

  test("a row opens the event by keyboard: formatted attributes, parent and children one click away", async () => {
    const page = await open();
    await signInWithKey(page, acme.reader, `${app.url}/console/?action=invoice.pay`);
    await expect.poll(() => rowIds(page)).toContain("ev-077");
    await page.locator('#rows tr[data-id="ev-077"]').focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#detail-title").textContent()).toBe("Event ev-077");
    expect(new URL(page.url()).searchParams.get("event")).toBe("ev-077");
    // The heading shows at once; the fields once GetEvent has answered.
    await expect.poll(() => page.locator("#detail-attributes").textContent()).not.toBe("");
    expect(JSON.parse((await page.locator("#detail-attributes").textContent()) ?? "")).toEqual({
      amount: 770,
      currency: "EUR",
      tags: ["a", "b"],
    });
    expect(await page.locator("#detail-attributes").textContent()).toContain('\n  "currency": "EUR"');
    await page.screenshot({ path: path.join(ARTIFACTS, "detail.png"), fullPage: true });
    // A parent and its children.
    await page.goto(`${app.url}/console/?event=job-1-step-a`);
    await page.locator("#detail-parent").getByRole("link", { name: "job-1" }).click();
    await expect.poll(() => page.locator("#detail-title").textContent()).toBe("Event job-1");
    await expect
      .poll(() => page.locator("#detail-children a").allTextContents())
      .toEqual(["job-1-step-b", "job-1-step-a"]);
    await page.getByRole("button", { name: "← Back to the events" }).click();
    await expect.poll(() => page.locator("#events").isVisible()).toBe(true);
  });

  test("live tail shows an event written meanwhile, without a reload", async () => {
    const page = await open();
    await signInWithKey(page, acme.reader);
    await expect.poll(() => rowIds(page)).toHaveLength(50);
    await page.getByLabel("Live tail").check();
    await expect.poll(() => page.locator("#tail-status").textContent()).toContain("Live");
    // The page refreshes nothing by itself: only the tail can bring the row; the bound is for a tail that stalled.
    await writer().create({ event: { id: "tail-now", action: "invoice.create", actor: { id: "u9" } } });
    await page.locator('#rows tr[data-id="tail-now"].new').waitFor({ timeout: 15_000 });
    expect((await rowIds(page))[0]).toBe("tail-now");
    await page.screenshot({ path: path.join(ARTIFACTS, "tail.png") });
  });

  test("tail resumes after the connection is cut, with no gap and no duplicate", async () => {
    const isTail = (url: string) => url.endsWith("/audit.v1.AuditService/Tail");
    const page = await open({}, isTail);
    await signInWithKey(page, acme.reader, `${proxied}/console/?action=cut.*`);
    await page.getByLabel("Live tail").check();
    await expect.poll(() => page.locator("#tail-status").textContent()).toContain("Live");
    await writer().create({ event: { id: "cut-1", action: "cut.before" } });
    await expect.poll(() => rowIds(page)).toEqual(["cut-1"]);
    await proxy.cut("reset");
    for (const id of ["cut-2", "cut-3", "cut-4"]) await writer().create({ event: { id, action: "cut.during" } });
    await expect.poll(() => page.locator("#tail-status").textContent()).toContain("resuming after sequence");
    await proxy.restore();
    await writer().create({ event: { id: "cut-5", action: "cut.after" } });
    await expect.poll(() => rowIds(page)).toEqual(["cut-5", "cut-4", "cut-3", "cut-2", "cut-1"]);
    await expect.poll(() => page.locator("#tail-status").textContent()).toContain("resumed after sequence");
    expect(await rowIds(page)).toEqual(await listIds({ actions: ["cut.*"] }));
  });

  test("a tail cut off as too slow says so, and resumes with every event once", async () => {
    const page = await open();
    await signInWithKey(page, acme.reader, `${app.url}/console/?action=burst.*`);
    await page.getByLabel("Live tail").check();
    await expect.poll(() => page.locator("#tail-status").textContent()).toContain("Live");
    // "Live" shows once the call is made; the service turns the stream live only after replaying what the page has
    // not seen. Until then a burst is read from the table page by page and never overflows the stream's buffer, so
    // one event through the stream first makes sure the burst meets a live stream.
    await writer().create({ event: { id: "burst-ready", action: "burst.ready" } });
    await expect.poll(() => rowIds(page)).toEqual(["burst-ready"]);
    const statuses: string[] = [];
    await page.exposeFunction("noteStatus", (text: string) => statuses.push(text));
    await page.evaluate(`new MutationObserver(() => noteStatus(document.getElementById("tail-status").textContent))
      .observe(document.getElementById("tail-status"), { childList: true, characterData: true, subtree: true })`);
    const events = Array.from({ length: 50 }, (_, i) => ({ id: `burst-${i}`, action: "burst.x" }));
    await writer().batchCreate({ events });
    await expect.poll(() => rowIds(page)).toHaveLength(51);
    expect(await rowIds(page)).toEqual(await listIds({ actions: ["burst.*"] }));
    await expect.poll(() => statuses.join("\n")).toContain("cut the live tail off for falling too far behind");
    await expect.poll(() => page.locator("#tail-status").textContent()).toContain("resumed after sequence");
  });

  test("an expired session returns to sign-in with a message; a missing role says which", async () => {
    const expiring = await clientFor(AdminService, app, "connect", acme.admin).createApiKey({
      name: "short-lived",
      roles: [Role.READER],
      expireTime: timestampFromMs(Date.now() + 3_600_000),
    });
    const page = await open();
    await signInWithKey(page, expiring.token);
    await expect.poll(() => rowIds(page)).toHaveLength(50);
    // Its end comes while the page is open: the expiry moved to now, as the passing hour would (credentials are read
    // on every call).
    const sql = postgres(app.databaseUrl, { max: 1, onnotice: () => {} });
    await sql`update credentials set expires_at = now() where id = ${expiring.credential?.id ?? ""}`;
    await sql.end();
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.locator("#sign-in").isVisible()).toBe(true);
    expect(await page.locator("#notice").textContent()).toContain("Your session has ended");
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
    // A writer-only key signs in but may not read.
    await page.getByLabel("API key or session token").fill(acme.writer);
    await page.getByRole("button", { name: "Sign in with key" }).click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("needs the reader role");
  });

  test("the service unreachable: the page says so and retries until it is back", async () => {
    const page = await open({}, (url) => url.startsWith(proxied));
    await signInWithKey(page, acme.reader, `${proxied}/console/`);
    await expect.poll(() => rowIds(page)).toHaveLength(50);
    await proxy.cut();
    await page.locator('#filters [name="source"]').fill("web");
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("Cannot reach the audit service");
    await proxy.restore();
    await expect.poll(() => rowIds(page)).toEqual((await listIds({ source: "web" })).slice(0, 50));
    await expect.poll(() => page.locator("#notice").isVisible()).toBe(false);
  });

  test("export of the filtered view as NDJSON and CSV holds exactly List's events", async () => {
    const page = await open();
    await signInWithKey(page, acme.reader, `${app.url}/console/?children=1&action=invoice.*`);
    const expected = await listIds({ includeChildren: true, actions: ["invoice.*"] });
    const [ndjson] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Export NDJSON" }).click(),
    ]);
    const lines = (await readFile((await ndjson.path()) as string, "utf8")).trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(expected);
    const [csv] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Export CSV" }).click(),
    ]);
    const rows = (await readFile((await csv.path()) as string, "utf8")).trimEnd().split("\r\n");
    expect(rows[0]).toMatch(/^sequence,id,occurred_at,/);
    expect(rows.slice(1).map((r) => r.split(",")[1])).toEqual(expected);
  });

  test("a superadmin picks the tenant; the pick is in the URL", async () => {
    const page = await open();
    await signInWithKey(page, app.adminToken, `${app.url}/console/?tenant=globex`);
    await expect.poll(() => rowIds(page)).toEqual(["globex-only"]);
    await page.locator("#tenant").selectOption("acme");
    await expect.poll(() => rowIds(page)).toEqual((await listIds({})).slice(0, 50));
    expect(new URL(page.url()).searchParams.get("tenant")).toBe("acme");
  });

  test("hosted on another origin, it reads and tails the service across origins (CORS_ORIGINS)", async () => {
    const page = await open();
    await signInWithKey(page, acme.reader, `${elsewhereUrl}/console/?action=cors.*`);
    await page.getByLabel("Live tail").check();
    await expect.poll(() => page.locator("#tail-status").textContent()).toContain("Live");
    await writer().create({ event: { id: "cors-1", action: "cors.check" } });
    await expect.poll(() => rowIds(page)).toEqual(["cors-1"]);
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => rowIds(page)).toEqual(["cors-1"]);
    expect(new URL(page.url()).origin).not.toBe(new URL(app.url).origin);
  });

  test("readable at 200% zoom and in dark mode: nothing wider than the window", async () => {
    // 200% zoom of a 1280-pixel window lays the page out in 640 CSS pixels.
    const page = await open({ viewport: { width: 640, height: 720 }, deviceScaleFactor: 2, colorScheme: "dark" });
    await signInWithKey(page, acme.reader);
    await expect.poll(() => rowIds(page)).toHaveLength(50);
    expect(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
    const table = "document.querySelector('.table-wrap')";
    expect(await page.evaluate(`${table}.scrollWidth <= ${table}.clientWidth`)).toBe(true);
    const background = await page.evaluate("getComputedStyle(document.body).backgroundColor");
    expect(background).toBe("rgb(13, 17, 23)");
    await page.screenshot({ path: path.join(ARTIFACTS, "zoom-200-dark.png") });
  });
});
