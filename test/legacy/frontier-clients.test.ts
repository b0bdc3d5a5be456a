import { randomUUID } from "node:crypto";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ApiClient, type GooglerpcStatus, type V1Beta1AuditLog } from "@raystack/frontier/api-client";
import { beforeAll, describe, expect, test } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { FrontierService as OwnFrontierService } from "../../gen/raystack/frontier/v1beta1/frontier_pb.js";
import { protocols, transportFor } from "../support/clients.js";
import { failureOf } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";
import { protonFrontierService } from "../support/proton.js";

let FrontierService: typeof OwnFrontierService;

const given = appFixture({ tenants: ["acme", "globex"] });
beforeAll(async () => {
  FrontierService = await protonFrontierService();
});

/** Frontier's official REST client (npm @raystack/frontier, generated from Frontier's OpenAPI). */
function sdk(token?: string) {
  return new ApiClient({
    baseUrl: given.app.url,
    baseApiParams: { headers: token ? { Authorization: `Bearer ${token}` } : {} },
  });
}

/** The status and google.rpc.Status body of a call the SDK rejected (it throws the response). */
async function sdkError(call: Promise<unknown>): Promise<{ status: number; error: GooglerpcStatus }> {
  try {
    await call;
  } catch (thrown) {
    const res = thrown as { status: number; error: GooglerpcStatus };
    return { status: res.status, error: res.error };
  }
  throw new Error("the call succeeded");
}

/**
 * Frontier's documented error body (every non-200 response of "Create audit log"): `code` int32, `message` string,
 * `details` an array of objects with an `@type` string. Returns the ErrorInfo reason and the BadRequest fields.
 */
function documentedError(error: GooglerpcStatus, code: Code) {
  expect(Object.keys(error).sort()).toEqual(["code", "details", "message"]);
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe("string");
  for (const detail of error.details ?? []) expect(typeof detail["@type"]).toBe("string");
  const details = (error.details ?? []) as Array<Record<string, unknown>>;
  const info = details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo");
  const badRequest = details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest") as
    | { fieldViolations: Array<{ field: string }> }
    | undefined;
  return { reason: info?.reason, fields: badRequest?.fieldViolations.map((v) => v.field) ?? [] };
}

type ListQuery = Parameters<InstanceType<typeof ApiClient>["frontierServiceListOrganizationAuditLogs"]>[1];

const log = (action: string, extra: Partial<V1Beta1AuditLog> = {}): V1Beta1AuditLog => ({
  source: "frontier",
  action,
  ...extra,
});

describe("Frontier's REST SDK (@raystack/frontier api-client)", () => {
  test("create, then list and get return the logs as Frontier renders them (proto field names)", async () => {
    const id = randomUUID();
    const created = await sdk(given.acme.writer).frontierServiceCreateOrganizationAuditLogs("acme", {
      logs: [
        log("sdk.project.create", {
          id,
          actor: { id: "u-1", type: "app/user", name: "Ada" },
          target: { id: "p-9", type: "app/project", name: "Apollo" },
          context: { ip: "10.0.0.1" },
          created_at: "2024-05-01T12:30:15.250Z",
        }),
        log("sdk.project.minimal"),
      ],
    });
    expect(created.status).toBe(200);
    expect(created.data).toEqual({});

    const listed = await sdk(given.acme.reader).frontierServiceListOrganizationAuditLogs("acme", {
      source: "frontier",
    });
    expect(listed.status).toBe(200);
    const logs = listed.data.logs ?? [];
    const full = logs.find((l) => l.id === id);
    expect(full).toEqual({
      id,
      source: "frontier",
      action: "sdk.project.create",
      actor: { id: "u-1", type: "app/user", name: "Ada" },
      target: { id: "p-9", type: "app/project", name: "Apollo" },
      context: { ip: "10.0.0.1" },
      created_at: "2024-05-01T12:30:15.250Z",
    });
    // Every field is written, as Frontier's gateway does: empty actor and target, no context.
    const minimal = logs.find((l) => l.action === "sdk.project.minimal");
    expect(minimal).toMatchObject({ actor: { id: "", type: "", name: "" }, target: { id: "", type: "", name: "" } });
    expect(minimal?.context).toEqual({});
    expect(minimal?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);

    const got = await sdk(given.acme.reader).frontierServiceGetOrganizationAuditLog("acme", id);
    expect(got.status).toBe(200);
    expect(got.data.log).toEqual(full);
    // By the organization's numeric id too.
    const byNumber = await sdk(given.acme.reader).frontierServiceGetOrganizationAuditLog(
      String(given.acme.numericId),
      id,
    );
    expect(byNumber.data.log).toEqual(full);
  });

  test("list filters: source, action, start_time and end_time inclusive, ignore_system", async () => {
    const at = (minute: number) => `2023-06-07T05:${String(minute).padStart(2, "0")}:00.000Z`;
    await sdk(given.acme.writer).frontierServiceCreateOrganizationAuditLogs("acme", {
      logs: [
        { source: "filters-a", action: "f.one", created_at: at(1) },
        { source: "filters-a", action: "f.two", created_at: at(2) },
        { source: "filters-b", action: "f.one", created_at: at(3) },
        { source: "filters-b", action: "f.sys", created_at: at(4), actor: { id: "frontier", type: "system" } },
        { source: "filters-b", action: "f.user", created_at: at(5), actor: { id: "u", type: "app/user" } },
      ],
    });
    const list = async (query: ListQuery) =>
      ((await sdk(given.acme.reader).frontierServiceListOrganizationAuditLogs("acme", query)).data.logs ?? []).map(
        (l) => `${l.source}/${l.action}@${l.created_at?.slice(14, 16)}`,
      );
    const window = { start_time: at(1), end_time: at(5) };

    // Newest first.
    expect(await list({ ...window })).toEqual([
      "filters-b/f.user@05",
      "filters-b/f.sys@04",
      "filters-b/f.one@03",
      "filters-a/f.two@02",
      "filters-a/f.one@01",
    ]);
    expect(await list({ ...window, source: "filters-a" })).toEqual(["filters-a/f.two@02", "filters-a/f.one@01"]);
    expect(await list({ ...window, action: "f.one" })).toEqual(["filters-b/f.one@03", "filters-a/f.one@01"]);
    expect(await list({ ...window, source: "filters-b", action: "f.one" })).toEqual(["filters-b/f.one@03"]);
    // Both ends are inclusive, to the millisecond.
    expect(await list({ start_time: at(2), end_time: at(3) })).toEqual(["filters-b/f.one@03", "filters-a/f.two@02"]);
    expect(await list({ start_time: at(3), end_time: at(3) })).toEqual(["filters-b/f.one@03"]);
    expect(await list({ start_time: "2023-06-07T05:02:00.001Z", end_time: "2023-06-07T05:02:59.999Z" })).toEqual([]);
    // System logs (actor type "system") are left out on request.
    expect(await list({ ...window, ignore_system: true })).toEqual([
      "filters-b/f.user@05",
      "filters-b/f.one@03",
      "filters-a/f.two@02",
      "filters-a/f.one@01",
    ]);
    expect(await list({ ...window, ignore_system: false })).toHaveLength(5);
  });

  test("one List call returns at most 1000 logs, the newest; end_time reaches the older ones", async () => {
    const at = (i: number) => new Date(Date.UTC(2022, 0, 1) + i * 1000).toISOString();
    const writer = sdk(given.acme.writer);
    await writer.frontierServiceCreateOrganizationAuditLogs("acme", {
      logs: Array.from({ length: 1000 }, (_, i) => ({ source: "cap", action: `cap.${i + 1}`, created_at: at(i + 1) })),
    });
    await writer.frontierServiceCreateOrganizationAuditLogs("acme", {
      logs: [{ source: "cap", action: "cap.0", created_at: at(0) }],
    });
    const first = (await sdk(given.acme.reader).frontierServiceListOrganizationAuditLogs("acme", { source: "cap" }))
      .data;
    const logs = first.logs ?? [];
    expect(logs).toHaveLength(1000);
    expect(logs[0]?.action).toBe("cap.1000");
    expect(logs[999]?.action).toBe("cap.1");
    const older = await sdk(given.acme.reader).frontierServiceListOrganizationAuditLogs("acme", {
      source: "cap",
      end_time: logs[999]?.created_at,
    });
    expect(older.data.logs?.map((l) => l.action)).toEqual(["cap.1", "cap.0"]);
  });

  test("each organization lists and gets only its own logs", async () => {
    const id = `globex-${randomUUID()}`;
    await sdk(given.globex.writer).frontierServiceCreateOrganizationAuditLogs("globex", {
      logs: [log("isolation", { id })],
    });
    const own = await sdk(given.globex.reader).frontierServiceListOrganizationAuditLogs("globex", {
      action: "isolation",
    });
    expect(own.data.logs?.map((l) => l.id)).toEqual([id]);
    const acmeList = await sdk(given.acme.reader).frontierServiceListOrganizationAuditLogs("acme", {
      action: "isolation",
    });
    expect(acmeList.data.logs ?? []).toEqual([]);
    // Another organization's log id, asked of one's own organization, does not exist there.
    const notFound = await sdkError(sdk(given.acme.reader).frontierServiceGetOrganizationAuditLog("acme", id));
    expect(notFound.status).toBe(404);
    expect(documentedError(notFound.error, Code.NotFound).reason).toBe("EVENT_NOT_FOUND");
    // An id no log can have is not found either, and not quoted back.
    const odd = "not an id ".repeat(50);
    const oddError = await sdkError(
      sdk(given.acme.reader).frontierServiceGetOrganizationAuditLog("acme", encodeURIComponent(odd)),
    );
    expect(oddError.status).toBe(404);
    expect(JSON.stringify(oddError.error)).not.toContain("not an id");
    // And asking of the other organization is refused before anything is looked up.
    const other = await sdkError(sdk(given.acme.reader).frontierServiceGetOrganizationAuditLog("globex", id));
    expect(other.status).toBe(403);
  });

  test("errors are Frontier's documented ones: 400, 401, 403, 404 with {code, message, details[@type]}", async () => {
    const bad = await sdkError(
      sdk(given.acme.writer).frontierServiceCreateOrganizationAuditLogs("acme", {
        logs: [log("ok"), { action: "no.source" } as V1Beta1AuditLog],
      }),
    );
    expect(bad.status).toBe(400);
    expect(documentedError(bad.error, Code.InvalidArgument)).toEqual({
      reason: "MISSING_FIELD",
      fields: ["logs[1].source"],
    });

    const unauthenticated = await sdkError(sdk().frontierServiceListOrganizationAuditLogs("acme"));
    expect(unauthenticated.status).toBe(401);
    expect(documentedError(unauthenticated.error, Code.Unauthenticated).reason).toBe("MISSING_CREDENTIAL");
    // The same for an organization that does not exist: no enumeration without a credential.
    const unknownOrg = await sdkError(sdk().frontierServiceListOrganizationAuditLogs("no-such-org"));
    expect(unknownOrg.status).toBe(401);
    expect(unknownOrg.error).toEqual(unauthenticated.error);

    const forbidden = await sdkError(
      sdk(given.acme.reader).frontierServiceCreateOrganizationAuditLogs("acme", { logs: [log("reader.write")] }),
    );
    expect(forbidden.status).toBe(403);
    expect(documentedError(forbidden.error, Code.PermissionDenied).reason).toBe("INSUFFICIENT_ROLE");
    const writerReads = await sdkError(sdk(given.acme.writer).frontierServiceListOrganizationAuditLogs("acme"));
    expect(writerReads.status).toBe(403);

    const missing = await sdkError(sdk(given.app.adminToken).frontierServiceListOrganizationAuditLogs("no-such-org"));
    expect(missing.status).toBe(404);
    expect(documentedError(missing.error, Code.NotFound).reason).toBe("TENANT_NOT_FOUND");
  });

  test("the document's request example (every field as its schema shows it) is stored and answered with {}", async () => {
    // "Example (from schema)" of Create audit log's body, with the document's created_at example value.
    const example = {
      logs: [
        {
          id: "string",
          source: "string",
          action: "string",
          actor: { id: "string", type: "string", name: "string" },
          target: { id: "string", type: "string", name: "string" },
          context: { property1: "string", property2: "string" },
          created_at: "2023-06-07T05:39:56.961Z",
        },
      ],
    };
    const res = await fetch(`${given.app.url}/v1beta1/organizations/acme/auditlogs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${given.acme.writer}` },
      body: JSON.stringify(example),
    });
    expect(res.status).toBe(200);
    // The document's 200 example.
    expect(await res.json()).toEqual({});
    const got = await sdk(given.acme.reader).frontierServiceGetOrganizationAuditLog("acme", "string");
    expect(got.data.log).toEqual(example.logs[0]);
  });
});

describe.each(protocols)("@raystack/proton's FrontierService stubs over %s", (protocol) => {
  const client = (token: string) => createClient(FrontierService, transportFor(given.app, protocol, token));

  test("the stubs are proton's, not this repository's", () => {
    expect(FrontierService).not.toBe(OwnFrontierService);
    expect(FrontierService.typeName).toBe(OwnFrontierService.typeName);
    // proton declares all of FrontierService; this repository only the audit-log slice.
    expect(FrontierService.methods.length).toBeGreaterThan(OwnFrontierService.methods.length);
  });

  test("create, list with filters, get; NOT_FOUND for an unknown id", async () => {
    const action = `proton.${protocol}`;
    const id = randomUUID();
    const createdAt = timestampFromDate(new Date("2024-02-03T04:05:06.789Z"));
    await client(given.acme.writer).createOrganizationAuditLogs({
      orgId: "acme",
      logs: [
        { id, source: "proton", action, actor: { id: "u", type: "system" }, context: { k: "v" }, createdAt },
        { source: "proton", action, createdAt },
      ],
    });
    const { logs } = await client(given.acme.reader).listOrganizationAuditLogs({ orgId: "acme", action });
    expect(logs).toHaveLength(2);
    const { logs: humans } = await client(given.acme.reader).listOrganizationAuditLogs({
      orgId: String(given.acme.numericId),
      action,
      ignoreSystem: true,
      startTime: createdAt,
      endTime: createdAt,
    });
    expect(humans.map((l) => l.id)).not.toContain(id);
    expect(humans).toHaveLength(1);

    const { log: got } = await client(given.acme.reader).getOrganizationAuditLog({ orgId: "acme", id });
    expect(got?.id).toBe(id);
    expect(got?.actor).toMatchObject({ id: "u", type: "system" });
    expect(got?.context).toEqual({ k: "v" });
    expect(got?.createdAt && timestampDate(got.createdAt).toISOString()).toBe("2024-02-03T04:05:06.789Z");

    const error = await failureOf(
      client(given.acme.reader).getOrganizationAuditLog({ orgId: "acme", id: "no-such-log" }),
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.code).toBe(Code.NotFound);
  });

  test("a batch with an invalid log is refused whole, naming logs[i].field", async () => {
    const action = `proton.atomic.${protocol}`;
    const error = await failureOf(
      client(given.acme.writer).createOrganizationAuditLogs({
        orgId: "acme",
        logs: [
          { source: "proton", action },
          { source: "proton", action, id: "has space" },
        ],
      }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    const fields = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
    expect(fields.map((v) => v.field)).toEqual(["logs[1].id"]);
    const { logs } = await client(given.acme.reader).listOrganizationAuditLogs({ orgId: "acme", action });
    expect(logs).toEqual([]);
  });

  test("FrontierService's other RPCs are not served: UNIMPLEMENTED", async () => {
    const proton = client(given.acme.admin) as unknown as Record<string, (req: object) => Promise<unknown>>;
    for (const name of ["listUsers", "getOrganization"]) {
      const call = proton[name] as (req: object) => Promise<unknown>;
      const error = await failureOf(call({}));
      expect(error.code, name).toBe(Code.Unimplemented);
    }
  });

  test("an organization id of any size is refused as another tenant's, quoted at most 256 characters long", async () => {
    const orgId = "o".repeat(100_000);
    const error = await failureOf(client(given.acme.reader).listOrganizationAuditLogs({ orgId }));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("TENANT_MISMATCH");
    expect(error.rawMessage.length).toBeLessThan(400);
  });

  test("authentication comes before the organization is looked at", async () => {
    const transport = transportFor(given.app, protocol);
    const anonymous = createClient(FrontierService, transport);
    for (const orgId of ["acme", "no-such-org"]) {
      const error = await failureOf(anonymous.listOrganizationAuditLogs({ orgId }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("MISSING_CREDENTIAL");
    }
  });
});
