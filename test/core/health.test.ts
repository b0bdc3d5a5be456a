import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestApp, type TestApp } from "../support/app.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

let database: TestDatabase;
let app: TestApp;
beforeAll(async () => {
  database = await createTestDatabase();
  app = await startTestApp({ database });
});
afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function get(path: string, method = "GET") {
  const res = await fetch(`${app.url}${path}`, { method });
  return { status: res.status, type: res.headers.get("content-type"), body: method === "HEAD" ? "" : await res.text() };
}

test("/healthz and /readyz answer without a credential while the database is up", async () => {
  expect(await get("/healthz")).toEqual({ status: 200, type: "application/json", body: '{"status":"ok"}' });
  const ready = await get("/readyz");
  expect(ready).toMatchObject({ status: 200, type: "application/json" });
  // The tests connect as a superuser, which /readyz reports (test/reliability/app-role.test.ts).
  expect(JSON.parse(ready.body)).toEqual({ status: "ready", warnings: [expect.stringContaining("is a superuser")] });
  expect((await get("/healthz", "HEAD")).status).toBe(200);
  expect((await get("/readyz", "HEAD")).status).toBe(200);
  expect((await get("/healthz", "POST")).status).toBe(405);
  expect((await get("/nothing-here")).status).toBe(404);
});

test("/readyz turns 503 when the database goes away, /healthz stays 200", async () => {
  await database.drop();
  const ready = await get("/readyz");
  expect(ready).toMatchObject({ status: 503, type: "application/json" });
  expect(JSON.parse(ready.body)).toMatchObject({ status: "database unavailable" });
  expect(await get("/healthz")).toEqual({ status: 200, type: "application/json", body: '{"status":"ok"}' });
});
