import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, test } from "vitest";
import { AdminService, AttributeType } from "../../gen/audit/v1/admin_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { reasonOf } from "../../src/errors.js";
import { TemplateStore } from "../../src/store/template-store.js";
import { microsToIso } from "../../src/store/time.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { expectError, failureOf, grpcServiceError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";
import { grpcErrorDetails, grpcJsClient } from "../support/grpc-js-client.js";

const given = appFixture();

/** A new tenant and an AdminService client with its admin key. */
async function adminOf(tenant: string) {
  const tokens = await provisionTenant(given.app, tenant);
  return { tokens, admin: clientFor(AdminService, given.app, "connect", tokens.admin) };
}

const now = () => microsToIso(BigInt(Date.now()) * 1000n);
const failure = (call: Promise<unknown>) => call.then(() => undefined, ConnectError.from);

describe("event templates", () => {
  test("are created, read, listed by name and deleted", async () => {
    const { admin } = await adminOf("crud");
    const { template } = await admin.createEventTemplate({
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
    const { template: read } = await admin.getEventTemplate({ name: "backup.done" });
    expect(read).toEqual(template);
    expect(read?.attributes.map((a) => [a.name, a.type, a.required])).toEqual([
      ["size", AttributeType.INTEGER, true],
      ["when", AttributeType.TIMESTAMP, false],
    ]);
    await admin.createEventTemplate({ template: { name: "alpha" } });
    expect((await admin.listEventTemplates({})).templates.map((t) => t.name)).toEqual(["alpha", "backup.done"]);
    await admin.deleteEventTemplate({ name: "backup.done" });
    expect((await admin.listEventTemplates({})).templates.map((t) => t.name)).toEqual(["alpha"]);
    const error = await failure(admin.getEventTemplate({ name: "backup.done" }));
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toBe('Universal Event Template "backup.done" not found.');
    expect(error && reasonOf(error)).toBe("TEMPLATE_NOT_FOUND");
    expect((await failure(admin.deleteEventTemplate({ name: "backup.done" })))?.code).toBe(Code.NotFound);
  });

  test("are private to their tenant", async () => {
    const one = await adminOf("one");
    const two = await adminOf("two");
    await one.admin.createEventTemplate({ template: { name: "shared.name" } });
    expect((await failure(two.admin.getEventTemplate({ name: "shared.name" })))?.code).toBe(Code.NotFound);
    expect((await two.admin.listEventTemplates({})).templates).toEqual([]);
    await expectError(two.admin.getEventTemplate({ tenant: "one", name: "shared.name" }), {
      code: Code.PermissionDenied,
      reason: "TENANT_MISMATCH",
    });
    // The same name in another tenant is another template.
    await two.admin.createEventTemplate({ template: { name: "shared.name" } });
  });

  test("need the admin role", async () => {
    const { tokens } = await adminOf("roles");
    for (const token of [tokens.writer, tokens.readerWriter]) {
      await expectError(clientFor(AdminService, given.app, "connect", token).listEventTemplates({}), {
        code: Code.PermissionDenied,
        reason: "INSUFFICIENT_ROLE",
      });
    }
  });

  test("refuse a second template of the same name", async () => {
    const { admin } = await adminOf("dup");
    await admin.createEventTemplate({ template: { name: "x" } });
    const error = await failure(admin.createEventTemplate({ template: { name: "x" } }));
    expect(error?.code).toBe(Code.AlreadyExists);
    expect(error && reasonOf(error)).toBe("TEMPLATE_EXISTS");
  });

  test("name every invalid field", async () => {
    const { admin } = await adminOf("bad");
    const error = await failure(
      admin.createEventTemplate({
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
    expect((await admin.listEventTemplates({})).templates).toEqual([]);
  });

  test("need a template and a name", async () => {
    const { admin } = await adminOf("missing");
    const missing = await failure(admin.createEventTemplate({}));
    expect(missing?.rawMessage).toBe("template: is required");
    expect(missing && reasonOf(missing)).toBe("MISSING_FIELD");
    expect((await failure(admin.getEventTemplate({ name: "" })))?.rawMessage).toBe("name: is required");
    const attributes = Array.from({ length: 101 }, (_, i) => ({ name: `a${i}`, type: AttributeType.STRING }));
    const wide = await failure(admin.createEventTemplate({ template: { name: "wide", attributes } }));
    expect(wide?.rawMessage).toBe("template.attributes: must have at most 100 entries, got 101");
  });

  test("are limited per tenant, even when created concurrently", async () => {
    // The service allows 1000; a store with a limit of 3 shows the same rule without creating 1000 templates.
    await provisionTenant(given.app, "many");
    const store = new TemplateStore(given.app.app.database.db, 3);
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
    const { tokens } = await adminOf("grpc");
    const grpcs = grpcJsClient(given.app.url, tokens.admin);
    try {
      const created = await grpcs.unary("AdminService", "CreateEventTemplate", {
        template: {
          name: "disk.full",
          attributes: [{ name: "free", type: "ATTRIBUTE_TYPE_FLOAT", required: true }],
          defaultTtlMinutes: "30",
        },
      });
      expect(created.template).toMatchObject({ name: "disk.full", defaultTtlMinutes: "30" });
      const read = await grpcs.unary("AdminService", "GetEventTemplate", { name: "disk.full" });
      expect(read.template.attributes).toEqual([{ name: "free", type: "ATTRIBUTE_TYPE_FLOAT", required: true }]);
      await grpcs.unary("AdminService", "DeleteEventTemplate", { name: "disk.full" });
      const error = await failureOf(
        grpcs.unary("AdminService", "GetEventTemplate", { name: "disk.full" }),
        "an error",
        grpcServiceError,
      );
      expect(error?.code).toBe(Code.NotFound);
      expect(error && grpcErrorDetails(error).message).toBe('Universal Event Template "disk.full" not found.');
    } finally {
      grpcs.close();
    }
  });
});
