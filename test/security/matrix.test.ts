import { create, type DescMethod, type JsonObject, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { FrontierService } from "../../gen/raystack/frontier/v1beta1/frontier_pb.js";
import { Reason } from "../../src/errors.js";
import { clientFor, type Protocol, transportFor } from "../support/clients.js";
import { changedTables, databaseFingerprint } from "../support/db-fingerprint.js";
import { restRequest } from "../support/rest-request.js";
import {
  type Caller,
  callers,
  forbiddenMarkers,
  identityOf,
  PASSWORD,
  startWorld,
  stopWorld,
  tokenOf,
  type World,
} from "./world.js";

let world: World;
const tally = { combinations: 0, denials: 0, leaks: 0 };

beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  console.log(
    `security matrix: ${tally.combinations} combinations, ${tally.denials} denials checked, ${tally.leaks} rows leaked`,
  );
  await stopWorld(world);
});

/**
 * Who may call each RPC, written by hand from docs/auth.md ("Roles", "Admin API and CLI") and docs/operations.md
 * (health and reflection need no credential) — never from src's own table, so a permissive edit there fails here.
 * The minimum role; `admin` holds reader and writer in its tenant, `superadmin` everything (docs/auth.md).
 */
type Needs = "public" | "authenticated" | "reader" | "writer" | "admin" | "superadmin";
const documented: Record<string, Needs> = {
  "audit.v1.AuditService/Create": "writer",
  "audit.v1.AuditService/BatchCreate": "writer",
  "audit.v1.AuditService/Publish": "writer",
  "audit.v1.AuditService/List": "reader",
  "audit.v1.AuditService/Tail": "reader",
  "audit.v1.AuditService/GetEvent": "reader",
  "audit.v1.AuditService/CountEvents": "reader",
  "audit.v1.AuditService/GetCheckpoint": "reader",
  "audit.v1.AuditService/GetInclusionProof": "reader",
  "audit.v1.AuditService/GetConsistencyProof": "reader",
  "audit.v1.AuditService/CreateStreamTicket": "reader",
  "audit.v1.AdminService/CreateTenant": "superadmin",
  "audit.v1.AdminService/ListTenants": "admin",
  "audit.v1.AdminService/CreateApiKey": "admin",
  "audit.v1.AdminService/CreateUser": "admin",
  "audit.v1.AdminService/Login": "public",
  "audit.v1.AdminService/GetCaller": "authenticated",
  "audit.v1.AdminService/RevokeCredential": "admin",
  "audit.v1.AdminService/ListCredentials": "admin",
  "audit.v1.AdminService/CreateEventTemplate": "admin",
  "audit.v1.AdminService/GetEventTemplate": "admin",
  "audit.v1.AdminService/ListEventTemplates": "admin",
  "audit.v1.AdminService/DeleteEventTemplate": "admin",
  "raystack.frontier.v1beta1.FrontierService/CreateOrganizationAuditLogs": "writer",
  "raystack.frontier.v1beta1.FrontierService/ListOrganizationAuditLogs": "reader",
  "raystack.frontier.v1beta1.FrontierService/GetOrganizationAuditLog": "reader",
  "grpc.health.v1.Health/Check": "public",
  "grpc.health.v1.Health/Watch": "public",
  "grpc.health.v1.Health/List": "public",
  "grpc.reflection.v1.ServerReflection/ServerReflectionInfo": "public",
  "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "public",
};
/** The roles each role holds, as docs/auth.md describes them. */
const holds: Record<"reader" | "writer" | "admin" | "superadmin", Needs[]> = {
  reader: ["reader"],
  writer: ["writer"],
  admin: ["reader", "writer", "admin"],
  superadmin: ["reader", "writer", "admin", "superadmin"],
};
const roleName = (role: Role) => Role[role].toLowerCase() as keyof typeof holds;

const procedureOf = (rpc: DescMethod) => `${rpc.parent.typeName}/${rpc.name}`;

/** Every RPC of every service the port serves, from the descriptors: a new RPC fails until the table names it. */
const services = [AuditService, AdminService, FrontierService, Health, ServerReflection, ServerReflectionAlpha];
const rpcs: DescMethod[] = services.flatMap((service) => service.methods);
/** The services with REST routes (google.api.http); health and reflection have none. */
const restRpcs: DescMethod[] = [AuditService, AdminService, FrontierService].flatMap((service) => service.methods);

test("the documented table names exactly the RPCs served", () => {
  expect(Object.keys(documented).sort()).toEqual(rpcs.map(procedureOf).sort());
});

let serial = 0;
const unique = (prefix: string) => `${prefix}${++serial}`;

/**
 * A request each RPC would carry out for tenant acme, if the caller may. Some need something to act on first
 * (a credential to revoke, a template to delete), made by the superadmin before the call.
 */
const requests = new Map<DescMethod, () => Promise<Record<string, unknown>>>([
  [AuditService.method.create, async () => ({ tenant: "acme", event: { action: "matrix.create" } })],
  [AuditService.method.batchCreate, async () => ({ tenant: "acme", events: [{ action: "matrix.batch" }] })],
  [
    AuditService.method.publish,
    async () => ({ tenant: "acme", eventName: world.template, attributes: [{ name: "n", value: "1" }] }),
  ],
  [AuditService.method.list, async () => ({ tenant: "acme", pageSize: 10 })],
  [AuditService.method.tail, async () => ({ tenant: "acme", afterSequence: 0n })],
  [AuditService.method.createStreamTicket, async () => ({ tenant: "acme" })],
  [AuditService.method.getCheckpoint, async () => ({ tenant: "acme" })],
  [AuditService.method.getInclusionProof, async () => ({ tenant: "acme", eventRef: { case: "sequence", value: 1n } })],
  [AuditService.method.getConsistencyProof, async () => ({ tenant: "acme", fromSize: 1n })],
  [
    AuditService.method.getEvent,
    async () => {
      const event = { id: "matrix-get", action: "matrix.get" };
      await clientFor(AuditService, world.app, "connect", world.app.adminToken).create({ tenant: "acme", event });
      return { tenant: "acme", id: event.id };
    },
  ],
  [
    AuditService.method.countEvents,
    async () => ({ tenant: "acme", filter: { startTime: { seconds: 1n } }, bucketWidth: { seconds: 366n * 86400n } }),
  ],
  [AdminService.method.createTenant, async () => ({ tenant: { id: unique("matrix-t") } })],
  [AdminService.method.listTenants, async () => ({})],
  [
    AdminService.method.createApiKey,
    async () => ({ tenant: "acme", name: unique("matrix-key"), roles: [Role.READER] }),
  ],
  [
    AdminService.method.createUser,
    async () => ({ tenant: "acme", username: unique("matrix-user"), password: PASSWORD, roles: [Role.READER] }),
  ],
  [AdminService.method.login, async () => ({ tenant: "acme", username: "reader-user", password: PASSWORD })],
  [AdminService.method.getCaller, async () => ({})],
  [
    AdminService.method.revokeCredential,
    async () => {
      const { credential } = await superadmin().createApiKey({
        tenant: "acme",
        name: unique("victim"),
        roles: [Role.READER],
      });
      return { tenant: "acme", id: credential?.id };
    },
  ],
  [AdminService.method.listCredentials, async () => ({ tenant: "acme" })],
  [AdminService.method.createEventTemplate, async () => ({ tenant: "acme", template: { name: unique("matrix.new") } })],
  [AdminService.method.getEventTemplate, async () => ({ tenant: "acme", name: `${world.marker.acme}.tpl` })],
  [AdminService.method.listEventTemplates, async () => ({ tenant: "acme" })],
  [
    AdminService.method.deleteEventTemplate,
    async () => {
      const name = unique("matrix.doomed");
      await superadmin().createEventTemplate({ tenant: "acme", template: { name } });
      return { tenant: "acme", name };
    },
  ],
  [
    FrontierService.method.createOrganizationAuditLogs,
    async () => ({ orgId: "acme", logs: [{ source: "s", action: "matrix.frontier" }] }),
  ],
  [FrontierService.method.listOrganizationAuditLogs, async () => ({ orgId: "acme" })],
  [Health.method.check, async () => ({ service: "audit.v1.AuditService" })],
  [Health.method.watch, async () => ({ service: "audit.v1.AuditService" })],
  [Health.method.list, async () => ({})],
  [ServerReflection.method.serverReflectionInfo, async () => ({ messageRequest: { case: "listServices", value: "" } })],
  [
    ServerReflectionAlpha.method.serverReflectionInfo,
    async () => ({ messageRequest: { case: "listServices", value: "" } }),
  ],
  [
    FrontierService.method.getOrganizationAuditLog,
    async () => {
      // The same id and content each time: stored once, then replayed.
      const event = { id: "matrix-frontier-get", action: "matrix.frontier.get" };
      await clientFor(AuditService, world.app, "connect", world.app.adminToken).create({ tenant: "acme", event });
      return { orgId: "acme", id: event.id };
    },
  ],
]);

/** A refused credential leaves its self-audit record (docs/auth.md); the checks below are about everything else. */
const serviceRecordsAside = { exceptServiceRecords: true };

const superadmin = () => clientFor(AdminService, world.app, "connect", world.app.adminToken);

const isPublic = (rpc: DescMethod) => documented[procedureOf(rpc)] === "public";

type Expected = { allow: true } | { allow: false; code: Code; reason: string };

/**
 * What docs/auth.md says for this caller on this RPC acting on acme: the documented role, the role hierarchy, and the
 * tenant check for RPCs whose request names a tenant (a contract fact, read from the request descriptor).
 */
function expectation(rpc: DescMethod, caller: Caller): Expected {
  const deny = (code: Code, reason: string): Expected => ({ allow: false, code, reason });
  const needs = documented[procedureOf(rpc)];
  if (needs === undefined) throw new Error(`${procedureOf(rpc)} is not in the documented table`);
  if (needs === "public") return { allow: true };
  if (caller === "no credential") return deny(Code.Unauthenticated, Reason.MissingCredential);
  if (caller === "wrong token") return deny(Code.Unauthenticated, Reason.InvalidToken);
  const identity = identityOf(caller);
  if (!identity) throw new Error(`no identity for ${caller}`);
  if (needs === "authenticated") return { allow: true };
  if (!identity.roles.some((role) => holds[roleName(role)].includes(needs))) {
    return deny(Code.PermissionDenied, Reason.InsufficientRole);
  }
  const namesTenant = rpc.input.fields.some((f) => ["tenant", "org_id"].includes(f.name) && f.fieldKind === "scalar");
  if (namesTenant && identity.tenant !== "acme" && !identity.roles.includes(Role.SUPERADMIN)) {
    return deny(Code.PermissionDenied, Reason.TenantMismatch);
  }
  return { allow: true };
}

/** Reflection is a bidirectional stream, which needs HTTP/2 (docs/operations.md): the protocol over HTTP/2. */
function http2Transport(protocol: Protocol, token: string | undefined) {
  if (protocol === "connect") return transportFor(world.app, "connect-binary", token);
  if (protocol !== "grpc-web") return transportFor(world.app, protocol, token);
  const header: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return createGrpcWebTransport({
    baseUrl: world.app.url,
    httpVersion: "2",
    interceptors: [
      (next) => (req) => {
        for (const [k, v] of Object.entries(header)) req.header.set(k, v);
        return next(req);
      },
    ],
  });
}

/** One call's result, as text to search for leaked data, and its code and ErrorInfo reason. */
interface Result {
  code: Code | 0;
  reason?: string;
  text: string;
}

async function callRpc(
  rpc: DescMethod,
  protocol: Protocol,
  caller: Caller,
  request: Record<string, unknown>,
): Promise<Result> {
  const client = createClient(
    rpc.parent,
    rpc.methodKind === "bidi_streaming"
      ? http2Transport(protocol, tokenOf(world, caller))
      : transportFor(world.app, protocol, tokenOf(world, caller)),
  ) as unknown as Record<string, (req: unknown, options?: { signal?: AbortSignal }) => unknown>;
  const call = client[rpc.localName] as (req: unknown, options?: { signal?: AbortSignal }) => unknown;
  try {
    let response: unknown;
    if (rpc.methodKind === "server_streaming" || rpc.methodKind === "bidi_streaming") {
      // An allowed Tail replays acme's events from sequence 0, Watch sends the current status, reflection answers
      // its one request: the first message is enough.
      const abort = new AbortController();
      const input =
        rpc.methodKind === "bidi_streaming"
          ? (async function* () {
              yield request;
            })()
          : request;
      const it = (call(input, { signal: abort.signal }) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      response = (await it.next()).value;
      abort.abort();
    } else {
      response = await call(request);
    }
    return { code: 0, text: JSON.stringify(toJson(rpc.output, response as never)) };
  } catch (error) {
    const e = ConnectError.from(error);
    const reason = e.findDetails(ErrorInfoSchema)[0]?.reason;
    return { code: e.code, reason, text: `${e.rawMessage} ${JSON.stringify(e.details)}` };
  }
}

/**
 * Runs one combination: the call, its expected allow or deny, nothing written on a deny, no foreign data ever, and
 * nothing of acme's touched by the other tenant's key (unless the route is public: Login's authority is the password).
 */
async function check(
  label: string,
  caller: Caller,
  expected: Expected,
  run: () => Promise<Result & { httpStatus?: number }>,
  options: { expectedStatus?: number; public?: boolean } = {},
) {
  tally.combinations += 1;
  const before = expected.allow ? undefined : await databaseFingerprint(world.sql, undefined, serviceRecordsAside);
  const guardAcme = identityOf(caller)?.tenant === "globex" && !options.public;
  const acmeBefore = guardAcme ? await databaseFingerprint(world.sql, "acme", serviceRecordsAside) : undefined;
  const result = await run();
  if (expected.allow) {
    expect(result.code, `${label}: expected success, got ${Code[result.code] ?? result.code} ${result.text}`).toBe(0);
  } else {
    tally.denials += 1;
    expect(Code[result.code] ?? result.code, `${label}: ${result.text}`).toBe(Code[expected.code]);
    expect(result.reason, `${label}: ${result.text}`).toBe(expected.reason);
    expect(
      changedTables(before ?? {}, await databaseFingerprint(world.sql, undefined, serviceRecordsAside)),
      `${label} wrote`,
    ).toEqual([]);
  }
  if (options.expectedStatus !== undefined) expect(result.httpStatus, label).toBe(options.expectedStatus);
  if (acmeBefore)
    expect(
      changedTables(acmeBefore, await databaseFingerprint(world.sql, "acme", serviceRecordsAside)),
      `${label} wrote to acme`,
    ).toEqual([]);
  for (const marker of forbiddenMarkers(world, caller)) {
    if (result.text.includes(marker)) tally.leaks += 1;
    expect(
      result.text.includes(marker),
      `${label} returned the other tenant's data: ${result.text.slice(0, 300)}`,
    ).toBe(false);
  }
}

describe.each<Protocol>(["connect", "grpc", "grpc-web"])("every RPC over %s", (protocol) => {
  test.each(rpcs.map((rpc) => [`${rpc.parent.name}.${rpc.name}`, rpc] as const))(
    "%s × every caller",
    async (_, rpc) => {
      const build = requests.get(rpc);
      if (!build) throw new Error(`no request for ${rpc.parent.typeName}/${rpc.name}: add one to the security matrix`);
      for (const caller of callers) {
        const request = await build();
        await check(
          `${protocol} ${rpc.name} as ${caller}`,
          caller,
          expectation(rpc, caller),
          () => callRpc(rpc, protocol, caller, request),
          { public: isPublic(rpc) },
        );
      }
    },
  );
});

describe("every REST route", () => {
  test.each(restRpcs.map((rpc) => [`${rpc.parent.name}.${rpc.name}`, rpc] as const))(
    "%s × every caller",
    async (_, rpc) => {
      const build = requests.get(rpc);
      if (!build) throw new Error(`no request for ${rpc.parent.typeName}/${rpc.name}: add one to the security matrix`);
      for (const caller of callers) {
        const message = toJson(rpc.input, create(rpc.input, await build())) as JsonObject;
        const req = restRequest(rpc, message);
        if (!req) throw new Error(`${rpc.name} has no REST route`);
        const expected = expectation(rpc, caller);
        const token = tokenOf(world, caller);
        await check(
          `REST ${req.method} ${req.path} as ${caller}`,
          caller,
          expected,
          async () => {
            const abort = new AbortController();
            const res = await fetch(world.app.url + req.path, {
              method: req.method,
              headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
              body: req.body,
              signal: abort.signal,
            });
            // A Tail stream stays open: its first line is enough.
            const text =
              rpc.methodKind === "server_streaming" && res.status === 200 ? await firstChunk(res) : await res.text();
            abort.abort();
            if (res.status === 200) return { code: 0, text, httpStatus: 200 };
            const status = JSON.parse(text) as { code: number; details: { reason?: string }[] };
            return {
              code: status.code,
              reason: status.details.find((d) => d.reason)?.reason,
              text,
              httpStatus: res.status,
            };
          },
          { expectedStatus: expected.allow ? 200 : codeToHttpStatus(expected.code), public: isPublic(rpc) },
        );
      }
    },
  );
});

async function firstChunk(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  const chunk = await reader?.read();
  await reader?.cancel();
  return Buffer.from(chunk?.value ?? new Uint8Array()).toString("utf8");
}

/** How a legacy route is called by each caller, and the status its own API gives each. */
interface LegacyRoute {
  name: string;
  call(caller: Caller): Promise<Response>;
  /** The status per caller; 2xx is an allow. */
  status: Record<Caller, number>;
}

const bearerOrNone = (caller: Caller): Record<string, string> => {
  const token = tokenOf(world, caller);
  return token ? { authorization: `Bearer ${token}` } : {};
};

/** Universal Controller authenticates users with HTTP Basic; the superadmin has only a token, which it refuses. */
function basicOf(caller: Caller): Record<string, string> {
  switch (caller) {
    case "no credential":
      return {};
    case "wrong token":
      return { authorization: `Basic ${Buffer.from("acme/admin-user:not-the-password").toString("base64")}` };
    case "other tenant's key":
      return { authorization: world.basic.globexAdmin };
    case "reader":
    case "writer":
    case "admin":
      return { authorization: world.basic[caller] };
    case "superadmin":
      return { authorization: `Bearer ${world.app.adminToken}` };
  }
}

const post = (path: string, headers: Record<string, string>, body: string, type = "application/json") =>
  fetch(world.app.url + path, { method: "POST", headers: { "content-type": type, ...headers }, body });

const legacyRoutes: LegacyRoute[] = [
  {
    name: "PlanoAuth POST /api/v1/audit_events_fmp/create",
    call: (caller) => {
      const token = tokenOf(world, caller);
      return post(
        "/api/v1/audit_events_fmp/create",
        {},
        JSON.stringify({
          ...(token ? { token } : {}),
          unique_id: unique("plano-"),
          script_name: "s",
          host_name: "h",
          file_name: "f",
          start_time: "2024-01-01 00:00:00",
        }),
      );
    },
    // A token without the writer role, and the global superadmin token, are "invalid-token" to PlanoAuth.
    status: {
      "no credential": 400,
      "wrong token": 401,
      "other tenant's key": 200,
      reader: 401,
      writer: 200,
      admin: 200,
      superadmin: 401,
    },
  },
  {
    name: "Axonize POST /odata/Audits",
    call: (caller) => {
      const token = tokenOf(world, caller);
      return post(
        "/odata/Audits",
        token ? { authorization: token } : {},
        JSON.stringify({ entityName: "e", entityId: "1", action: "Create", category: "Users" }),
      );
    },
    status: {
      "no credential": 401,
      "wrong token": 401,
      "other tenant's key": 201,
      reader: 403,
      writer: 201,
      admin: 201,
      superadmin: 403,
    },
  },
  {
    name: "GET /audit",
    call: (caller) =>
      fetch(`${world.app.url}/audit`, { headers: { accept: "application/xml", ...bearerOrNone(caller) } }),
    status: {
      "no credential": 401,
      "wrong token": 401,
      "other tenant's key": 200,
      reader: 200,
      writer: 403,
      admin: 200,
      superadmin: 403,
    },
  },
  {
    name: "Universal Controller POST /uc/resources/universalevent/publish",
    call: (caller) =>
      post(
        "/uc/resources/universalevent/publish",
        basicOf(caller),
        `<universalEvent><name>${world.template}</name><attributes><attribute name="n">1</attribute></attributes></universalEvent>`,
        "application/xml",
      ),
    status: {
      "no credential": 401,
      "wrong token": 401,
      "other tenant's key": 200,
      reader: 403,
      writer: 200,
      admin: 200,
      superadmin: 401,
    },
  },
  {
    name: "Universal Controller POST /uc/resources/audit/list",
    call: (caller) =>
      post(
        "/uc/resources/audit/list",
        { accept: "application/json", ...basicOf(caller) },
        "<audit-filter/>",
        "application/xml",
      ),
    status: {
      "no credential": 401,
      "wrong token": 401,
      "other tenant's key": 200,
      reader: 200,
      writer: 403,
      admin: 200,
      superadmin: 401,
    },
  },
];

describe("every legacy route", () => {
  test.each(legacyRoutes.map((r) => [r.name, r] as const))("%s × every caller", async (_, route) => {
    for (const caller of callers) {
      const status = route.status[caller];
      const allow = status < 300;
      tally.combinations += 1;
      const before = await databaseFingerprint(world.sql, undefined, serviceRecordsAside);
      const acmeBefore =
        identityOf(caller)?.tenant === "globex"
          ? await databaseFingerprint(world.sql, "acme", serviceRecordsAside)
          : undefined;
      const res = await route.call(caller);
      const text = await res.text();
      const label = `${route.name} as ${caller}`;
      expect(res.status, `${label}: ${text.slice(0, 300)}`).toBe(status);
      if (!allow) {
        tally.denials += 1;
        expect(
          changedTables(before, await databaseFingerprint(world.sql, undefined, serviceRecordsAside)),
          `${label} wrote`,
        ).toEqual([]);
      }
      if (acmeBefore)
        expect(
          changedTables(acmeBefore, await databaseFingerprint(world.sql, "acme", serviceRecordsAside)),
          `${label} wrote to acme`,
        ).toEqual([]);
      for (const marker of forbiddenMarkers(world, caller)) {
        if (text.includes(marker)) tally.leaks += 1;
        expect(text.includes(marker), `${label} returned the other tenant's data: ${text.slice(0, 300)}`).toBe(false);
      }
      // An allowed listing by a tenant's own credential does show its own data: the check above is not vacuous.
      if (allow && route.name.includes("list") && caller === "reader") expect(text).toContain(world.marker.acme);
    }
  });
});
