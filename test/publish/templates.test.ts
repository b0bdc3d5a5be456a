import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, AttributeType } from "../../gen/audit/v1/admin_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { reasonOf } from "../../src/errors.js";
import { TemplateStore } from "../../src/store/template-store.js";
import { microsToIso } from "../../src/store/time.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { type GrpcClients, grpcClients, grpcStatus } from "../support/grpc-client.js";

let app: TestApp;
let admin: ReturnType<typeof createClient<typeof AdminService>>;
let grpcs: GrpcClients;

beforeAll(async () => {
  app = await startTestApp();
  admin = createClient(AdminService, createConnectTransport({ baseUrl: app.url, httpVersion: "1.1" }));
  grpcs = grpcClients(app.url);
});
afterAll(async () => {
  grpcs?.close();
  await app?.close();
});

const now = () => microsToIso(BigInt(Date.now()) * 1000n);
const failure = (call: Promise<unknown>) => call.then(() => undefined, ConnectError.from);

describe("event templates", () => {
  test("are created, read, listed by name and deleted", async () => {
    const tenant = "crud";
    const { template } = await admin.createEventTemplate({
      tenant,
      template: {
        name: "backup.done",
        description: "A backup finished",
        attributes: [
          { name: "size", type: AttributeType.INTEGER, required: true },
          { name: "when", type: AttributeType.TIMESTAMP },
        ],
        defaultTtlMinutes: 1440n,
      },
    });
    expect(template?.createTime).toBeDefined();
    const { template: read } = await admin.getEventTemplate({ tenant, name: "backup.done" });
    expect(read).toEqual(template);
    expect(read?.attributes.map((a) => [a.name, a.type, a.required])).toEqual([
      ["size", AttributeType.INTEGER, true],
      ["when", AttributeType.TIMESTAMP, false],
    ]);
    await admin.createEventTemplate({ tenant, template: { name: "alpha" } });
    expect((await admin.listEventTemplates({ tenant })).templates.map((t) => t.name)).toEqual(["alpha", "backup.done"]);
    await admin.deleteEventTemplate({ tenant, name: "backup.done" });
    expect((await admin.listEventTemplates({ tenant })).templates.map((t) => t.name)).toEqual(["alpha"]);
    const error = await failure(admin.getEventTemplate({ tenant, name: "backup.done" }));
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toBe('Universal Event Template "backup.done" not found.');
    expect(error && reasonOf(error)).toBe("TEMPLATE_NOT_FOUND");
    expect((await failure(admin.deleteEventTemplate({ tenant, name: "backup.done" })))?.code).toBe(Code.NotFound);
  });

  test("are private to their tenant", async () => {
    await admin.createEventTemplate({ tenant: "one", template: { name: "shared.name" } });
    expect((await failure(admin.getEventTemplate({ tenant: "two", name: "shared.name" })))?.code).toBe(Code.NotFound);
    expect((await admin.listEventTemplates({ tenant: "two" })).templates).toEqual([]);
    // The same name in another tenant is another template.
    await admin.createEventTemplate({ tenant: "two", template: { name: "shared.name" } });
  });

  test("refuse a second template of the same name", async () => {
    await admin.createEventTemplate({ tenant: "dup", template: { name: "x" } });
    const error = await failure(admin.createEventTemplate({ tenant: "dup", template: { name: "x" } }));
    expect(error?.code).toBe(Code.AlreadyExists);
    expect(error && reasonOf(error)).toBe("TEMPLATE_EXISTS");
  });

  test("name every invalid field", async () => {
    const error = await failure(
      admin.createEventTemplate({
        tenant: "bad",
        template: {
          name: "has space",
          description: "\u0000",
          attributes: [
            { name: "", type: AttributeType.STRING },
            { name: "ok", type: AttributeType.UNSPECIFIED },
            { name: "ok", type: 99 as AttributeType },
            { name: "1st", type: AttributeType.BOOLEAN },
          ],
          defaultTtlMinutes: -5n,
        },
      }),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
    const violations = error?.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => [v.field, v.description]);
    expect(violations).toEqual([
      ["template.name", "must be 1-128 characters of A-Z a-z 0-9 _ . : -, starting with a letter or _"],
      ["template.description", "must be valid UTF-8 text without NUL characters"],
      ["template.attributes[0].name", "is required"],
      ["template.attributes[1].type", "is required"],
      ["template.attributes[2].name", "repeats the name of attributes[1]"],
      ["template.attributes[2].type", "unknown value 99"],
      ["template.attributes[3].name", "must be 1-128 characters of A-Z a-z 0-9 _ . : -, starting with a letter or _"],
      ["template.default_ttl_minutes", "must be between 0 and 52560000 minutes"],
    ]);
    expect((await admin.listEventTemplates({ tenant: "bad" })).templates).toEqual([]);
  });

  test("need a template, a name and a tenant", async () => {
    const missing = await failure(admin.createEventTemplate({ tenant: "bad" }));
    expect(missing?.rawMessage).toBe("template: is required");
    expect(missing && reasonOf(missing)).toBe("MISSING_FIELD");
    expect((await failure(admin.getEventTemplate({ tenant: "bad", name: "" })))?.rawMessage).toBe("name: is required");
    expect((await failure(admin.listEventTemplates({ tenant: "" })))?.rawMessage).toBe("tenant: is required");
  });

  test("hold at most 100 attributes", async () => {
    const attributes = Array.from({ length: 101 }, (_, i) => ({ name: `a${i}`, type: AttributeType.STRING }));
    const error = await failure(admin.createEventTemplate({ tenant: "bad", template: { name: "wide", attributes } }));
    expect(error?.rawMessage).toBe("template.attributes: must have at most 100 entries, got 101");
  });

  test("are limited per tenant, even when created concurrently", async () => {
    // The service allows 1000; a store with a limit of 3 shows the same rule without creating 1000 templates.
    const store = new TemplateStore(app.app.database.db, 3);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.create({ tenant: "many", name: `t${i}`, description: "", attributes: [], defaultTtlMinutes: 0 }, now()),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    expect(results.filter((r) => !r.ok && r.problem === "limit")).toHaveLength(5);
    expect(await store.list("many")).toHaveLength(3);
  });

  test("work over gRPC", async () => {
    const created = await grpcs.call(grpcs.admin, "CreateEventTemplate", {
      tenant: "grpc",
      template: {
        name: "disk.full",
        attributes: [{ name: "free", type: "ATTRIBUTE_TYPE_FLOAT", required: true }],
        defaultTtlMinutes: "30",
      },
    });
    expect(created.template).toMatchObject({ name: "disk.full", defaultTtlMinutes: "30" });
    const read = await grpcs.call(grpcs.admin, "GetEventTemplate", { tenant: "grpc", name: "disk.full" });
    expect(read.template.attributes).toEqual([{ name: "free", type: "ATTRIBUTE_TYPE_FLOAT", required: true }]);
    await grpcs.call(grpcs.admin, "DeleteEventTemplate", { tenant: "grpc", name: "disk.full" });
    const error = (await grpcs.call(grpcs.admin, "GetEventTemplate", { tenant: "grpc", name: "disk.full" }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    )) as grpc.ServiceError | undefined;
    expect(error?.code).toBe(Code.NotFound);
    expect(error && grpcStatus(error)?.message).toBe('Universal Event Template "disk.full" not found.');
  });
});
