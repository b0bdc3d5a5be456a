import { Code, ConnectError } from "@connectrpc/connect";
import postgres from "postgres";
import { beforeAll, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { clientFor, type Protocol } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";

const given = appFixture({ tenants: ["acme"] });
beforeAll(async () => {
  // Break the schema under the running service so an insert fails with a database error it cannot map.
  const sql = postgres(given.app.databaseUrl, { max: 1, onnotice: () => {} });
  await sql`alter table events rename column source to source_renamed`;
  await sql.end();
});

test.each<Protocol>(["connect", "grpc-web", "grpc"])(
  "an unexpected failure is INTERNAL with a request id, no stack and no SQL (%s)",
  async (protocol) => {
    const client = clientFor(AuditService, given.app, protocol, given.acme.writer);
    const error = await client.create({ event: { action: "x" } }).then(
      () => expect.fail("the create should fail"),
      (e) => ConnectError.from(e),
    );
    expect(error.code).toBe(Code.Internal);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("INTERNAL");
    const requestId = error.findDetails(ErrorInfoSchema)[0]?.metadata.requestId ?? "";
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(error.rawMessage).toBe(`internal error (request id ${requestId})`);
    for (const leak of ["insert into", "source", "events", "at ", ".ts:", "postgres"]) {
      expect(error.rawMessage.toLowerCase()).not.toContain(leak);
    }
    // The full story is in the server's log under the same request id.
    const logged = given.app.logs.find((line) => line.includes(requestId) && line.includes("internal error"));
    expect(logged).toMatch(/source/);
  },
);
