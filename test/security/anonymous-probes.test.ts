import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { requiredRoles } from "../../src/interceptors/auth.js";
import { clientFor } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";

// An anonymous caller must learn nothing about which tenants exist, on any route: it authenticates before the route
// looks at the tenant, the media type or the body. Each probe is sent naming an existing tenant (by slug and by
// numeric id) and an unknown one; the answers must be identical, byte for byte.

let tenantKeys: { label: string; key: string }[];
const PASSWORD = "probe-password-1";

// Every probe with a wrong password is a failure the throttle counts; this test is about the answers only.
const given = appFixture({
  env: { PASSWORD_FAILURES_PER_USER: "0", PASSWORD_FAILURES_PER_ADDRESS: "0", PASSWORD_HASH_CONCURRENCY: "4" },
  tenants: ["acme"],
});
beforeAll(async () => {
  const { acme } = given;
  await clientFor(AdminService, given.app, "connect", acme.admin).createUser({
    username: "ann",
    password: PASSWORD,
    roles: [Role.ADMIN],
  });
  tenantKeys = [
    { label: "existing slug", key: "acme" },
    { label: "unknown slug", key: "no-such-tenant" },
    { label: "existing numeric id", key: String(acme.numericId) },
    { label: "unknown numeric id", key: "987654" },
  ];
});

type Headers = Record<string, string>;

/** Credentials an anonymous caller may present: none, a made-up token, a wrong password for a user of the tenant. */
const credentials = (tenant: string): Record<string, Headers> => ({
  "no credential": {},
  "wrong token": { authorization: `Bearer at_${randomBytes(32).toString("base64url")}` },
  "wrong password": { authorization: `Basic ${Buffer.from(`${tenant}/ann:wrong-password`).toString("base64")}` },
});

/** What a route is sent: its own valid body, the same under a wrong media type, and a broken body. */
interface Inputs {
  valid: { type: string; body: string };
  /** GET routes vary the query instead of the body. */
  query?: { valid: string; invalid: string };
}

interface Route {
  name: string;
  method: string;
  /** The path naming `tenant`. */
  path(tenant: string): string;
  inputs(tenant: string): Inputs;
  /** Extra headers the route's clients send (Accept). */
  headers?: Headers;
  /** The credential is sent in the body (PlanoAuth): the route must read the body before it can authenticate. */
  credentialInBody?: (credential: Headers) => Record<string, string>;
  /** Login: no credential needed; only the tenant-independence of the answer is checked. */
  public?: boolean;
}

interface Answer {
  status: number;
  body: string;
  authenticate: string | null;
}

async function send(route: Route, tenant: string, credential: Headers, input: "valid" | "wrong type" | "broken") {
  const inputs = route.inputs(tenant);
  let path = route.path(tenant);
  const headers: Headers = { ...route.headers };
  let body: string | undefined;
  if (route.method === "GET" || route.method === "DELETE") {
    const query = input === "valid" ? inputs.query?.valid : inputs.query?.invalid;
    if (query) path += `?${query}`;
  } else {
    const extra = route.credentialInBody?.(credential) ?? {};
    const valid = inputs.valid.body.replace(
      /^\{/,
      `{${Object.entries(extra).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)},`)}`,
    );
    headers["content-type"] = input === "wrong type" ? "text/plain" : inputs.valid.type;
    body = input === "broken" ? valid.slice(0, Math.ceil(valid.length / 2)) : valid;
  }
  if (!route.credentialInBody) Object.assign(headers, credential);
  const res = await fetch(given.app.url + path, { method: route.method, headers, body });
  return { status: res.status, body: await res.text(), authenticate: res.headers.get("www-authenticate") };
}

/** Every REST route the running service compiled from the google.api.http annotations. */
function restRoutes(): Route[] {
  return given.app.app.restRoutes.map((line) => {
    const match = /^(\S+) (\S+) → (.+)\.([^.]+)$/.exec(line);
    if (!match) throw new Error(`cannot read REST route "${line}"`);
    const [, method = "", template = "", service = "", rpc = ""] = match;
    const fill = (tenant: string) =>
      template.replace(/\{([^}=]+)(?:=[^}]*)?\}/g, (_, name: string) =>
        encodeURIComponent(name === "tenant" || name === "org_id" ? tenant : `x${name.length}`),
      );
    return {
      name: `REST ${method} ${template}`,
      method,
      path: fill,
      inputs: () => ({
        valid: {
          type: "application/json",
          body: JSON.stringify({ username: "ann", password: "wrong-password" }),
        },
        query: { valid: "pageSize=1", invalid: "pageSize=not-a-number&noSuchParameter=1" },
      }),
      public: requiredRoles.get(`${service}/${rpc}`) === "public",
    };
  });
}

const eventJson = JSON.stringify({
  action: "probe",
  source: "probe",
  entityName: "e",
  entityId: "1",
  category: "Users",
});

/** The five legacy APIs' routes (docs/legacy.md). */
const legacyRoutes: Route[] = [
  {
    name: "PlanoAuth POST /api/v1/audit_events_fmp/create",
    method: "POST",
    path: () => "/api/v1/audit_events_fmp/create",
    inputs: (tenant) => ({
      valid: {
        type: "application/json",
        body: JSON.stringify({
          unique_id: "p1",
          script_name: tenant,
          host_name: "h",
          file_name: "f",
          start_time: "2024-01-01 00:00:00",
        }),
      },
    }),
    credentialInBody: (credential) => {
      const header = credential.authorization;
      const body: Record<string, string> = {};
      if (header?.startsWith("Bearer ")) body.token = header.slice(7);
      return body;
    },
  },
  {
    name: "Axonize POST /odata/Audits",
    method: "POST",
    path: () => "/odata/Audits",
    inputs: (tenant) => ({ valid: { type: "application/json", body: eventJson.replace("probe", tenant) } }),
  },
  {
    name: "Audit Resource GET /audit",
    method: "GET",
    path: () => "/audit",
    headers: { accept: "application/json" },
    inputs: (tenant) => ({
      valid: { type: "", body: "" },
      query: { valid: `userName=${tenant}`, invalid: `userName=${tenant}&noSuchParameter=1` },
    }),
  },
  {
    name: "Frontier POST /v1beta1/organizations/{org_id}/auditlogs",
    method: "POST",
    path: (tenant) => `/v1beta1/organizations/${encodeURIComponent(tenant)}/auditlogs`,
    inputs: () => ({
      valid: { type: "application/json", body: JSON.stringify({ logs: [{ source: "s", action: "a" }] }) },
    }),
  },
  {
    name: "Universal Controller POST /uc/resources/universalevent/publish",
    method: "POST",
    path: () => "/uc/resources/universalevent/publish",
    inputs: () => ({ valid: { type: "application/xml", body: "<universalEvent><name>probe</name></universalEvent>" } }),
  },
  {
    name: "Universal Controller POST /uc/resources/audit/list",
    method: "POST",
    path: () => "/uc/resources/audit/list",
    headers: { accept: "application/json" },
    inputs: () => ({ valid: { type: "application/json", body: JSON.stringify({ auditType: "probe" }) } }),
  },
];

let probes = 0;

/**
 * For one route: every credential × input, sent naming each tenant key, must get one and the same answer; and an
 * anonymous caller of a non-public route gets the same answer whatever input it sends (authentication first).
 */
async function checkRoute(route: Route) {
  const failures: string[] = [];
  for (const credential of Object.keys(credentials(""))) {
    const byInput = new Map<string, Answer>();
    // A wrong password costs a scrypt per probe: it is sent with the valid input only (the input checks are the same
    // code path for every credential, and are covered by the other two).
    const inputs =
      credential === "wrong password" ? (["valid"] as const) : (["valid", "wrong type", "broken"] as const);
    for (const input of inputs) {
      // Over the Basic credentials the tenant in the user name varies with the tenant probed.
      const answers = await Promise.all(
        tenantKeys.map(async ({ label, key }) => ({
          label,
          answer: await send(route, key, credentials(key)[credential] as Headers, input),
        })),
      );
      probes += answers.length;
      const first = answers[0] as { label: string; answer: Answer };
      for (const { label, answer } of answers.slice(1)) {
        if (JSON.stringify(answer) !== JSON.stringify(first.answer)) {
          failures.push(
            `${credential}, ${input} input: ${first.label} → ${first.answer.status} ${first.answer.body.slice(0, 160)}; ${label} → ${answer.status} ${answer.body.slice(0, 160)}`,
          );
        }
      }
      byInput.set(input, first.answer);
    }
    if (route.public || route.credentialInBody) continue;
    const valid = byInput.get("valid") as Answer;
    expect(valid.status, `${route.name}, ${credential}: ${valid.body}`).toBe(401);
    for (const [input, answer] of byInput) {
      if (JSON.stringify(answer) !== JSON.stringify(valid)) {
        failures.push(
          `${credential}: the ${input} input → ${answer.status} ${answer.body.slice(0, 160)}, not the valid input's 401`,
        );
      }
    }
  }
  expect(failures, route.name).toEqual([]);
}

describe("an anonymous caller cannot tell which tenants exist", () => {
  test("every REST route (from the compiled route table)", async () => {
    const routes = restRoutes();
    expect(routes.length).toBeGreaterThan(10);
    for (const route of routes) await checkRoute(route);
  }, 300_000);

  test.each(legacyRoutes.map((r) => [r.name, r] as const))(
    "%s",
    async (_, route) => {
      await checkRoute(route);
    },
    60_000,
  );

  afterAll(() => {
    console.log(
      `anonymous probes: ${probes} requests over ${given.app.app.restRoutes.length} REST and ${legacyRoutes.length} legacy routes; answers independent of the tenant`,
    );
  });
});
