import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { clientFor } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const buf = path.join(root, "node_modules/.bin/buf");
const run = promisify(execFile);

const given = appFixture({ tenants: ["reflect"] });

/** `buf curl` with no --schema, so it learns the contract by server reflection; run outside the repository's buf.yaml. */
async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    cwd: "/",
    timeout: 30_000,
  });
  return stdout;
}

test("buf curl lists the services over reflection v1 and v1alpha", async () => {
  const services = [
    "audit.v1.AdminService",
    "audit.v1.AuditService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "raystack.frontier.v1beta1.FrontierService",
  ];
  expect((await bufCurl("--list-services", given.app.url)).trim().split("\n")).toEqual(services);
  const alpha = await bufCurl("--reflect-protocol", "grpc-v1alpha", "--list-services", given.app.url);
  expect(alpha.trim().split("\n")).toEqual(services);
});

test("buf curl lists AuditService's methods and calls Create, knowing only the server's answers", async () => {
  const methods = (await bufCurl("--list-methods", given.app.url)).trim().split("\n");
  // Every method of the generated descriptor, no more: what the server said matches the contract.
  expect(methods.filter((m) => m.startsWith("audit.v1.AuditService/"))).toEqual(
    AuditService.methods.map((m) => `audit.v1.AuditService/${m.name}`).sort(),
  );
  const created = JSON.parse(
    await bufCurl(
      "-H",
      `authorization: Bearer ${given.reflect.writer}`,
      "-d",
      JSON.stringify({ event: { action: "invoice.pay", actor: { id: "u-42" }, attributes: { amount: 12 } } }),
      `${given.app.url}/audit.v1.AuditService/Create`,
    ),
  );
  expect(created.event).toMatchObject({ tenant: "reflect", action: "invoice.pay", actor: { id: "u-42" } });
  // Stored and acknowledged: the reader lists it under the id and sequence buf curl was answered with.
  const { events } = await clientFor(AuditService, given.app, "connect", given.reflect.reader).list({});
  expect(events.map((e) => [e.id, String(e.sequence)])).toEqual([[created.event.id, created.event.sequence]]);
});

test("reflection describes AuditService as the contract does; a file comes with everything it imports; unknown names are NOT_FOUND", async () => {
  const reflection = clientFor(ServerReflection, given.app, "grpc");
  const ask = async (
    messageRequest: Parameters<typeof reflection.serverReflectionInfo>[0] extends AsyncIterable<infer R> ? R : never,
  ) => {
    for await (const res of reflection.serverReflectionInfo(
      (async function* () {
        yield messageRequest;
      })(),
    )) {
      return res.messageResponse;
    }
    throw new Error("no answer");
  };
  const answer = await ask({ messageRequest: { case: "fileContainingSymbol", value: "audit.v1.AuditService.Create" } });
  expect(answer.case).toBe("fileDescriptorResponse");
  const names =
    answer.case === "fileDescriptorResponse"
      ? answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name)
      : [];
  expect(names[0]).toBe("audit/v1/audit_service.proto");
  // What `describe audit.v1.AuditService` prints: each method with its types and streaming, as the contract says.
  const described =
    answer.case === "fileDescriptorResponse"
      ? fromBinary(FileDescriptorProtoSchema, answer.value.fileDescriptorProto[0] ?? new Uint8Array()).service.find(
          (s) => s.name === "AuditService",
        )
      : undefined;
  const shape = (name: string, input: string, output: string, clientStreaming: boolean, serverStreaming: boolean) =>
    `${name}(${clientStreaming ? "stream " : ""}${input}) returns (${serverStreaming ? "stream " : ""}${output})`;
  expect(
    described?.method.map((m) =>
      shape(m.name, m.inputType, m.outputType, m.clientStreaming ?? false, m.serverStreaming ?? false),
    ),
  ).toEqual(
    AuditService.methods.map((m) =>
      shape(
        m.name,
        `.${m.input.typeName}`,
        `.${m.output.typeName}`,
        m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
        m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      ),
    ),
  );
  expect(names).toEqual(
    expect.arrayContaining([
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
    ]),
  );
  const extensions = await ask({
    messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" },
  });
  expect(extensions).toMatchObject({ case: "allExtensionNumbersResponse", value: { extensionNumber: [72295728] } });
  const missing = await ask({ messageRequest: { case: "fileByFilename", value: "nope.proto" } });
  expect(missing).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
});
