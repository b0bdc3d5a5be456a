import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fromJson } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createServiceImplSpec,
  type MethodImplSpec,
} from "@connectrpc/connect";
import {
  createMethodSerializationLookup,
  envelopeDecompress,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";
import { compressionGzip } from "@connectrpc/connect-node";
import { describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { asClientFault } from "../../src/interceptors/client-faults.js";
import { failureOf } from "../support/errors.js";

/**
 * asClientFault recognises some of connect-es's and protobuf-es's errors only by their message text. Each case here
 * makes the installed library raise the error for real, so an upgrade that rewords one fails here, not in production.
 */
const installed = (name: string) =>
  (
    JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), "utf8")) as {
      version: string;
    }
  ).version;

test("the patterns are pinned to the installed library versions", () => {
  // On an upgrade: run this file, adjust the patterns in src/interceptors/client-faults.ts, then these versions.
  expect(installed("@connectrpc/connect")).toBe("2.2.0");
  expect(installed("@connectrpc/connect-node")).toBe("2.2.0");
  expect(installed("@bufbuild/protobuf")).toBe("2.17.0");
});

/** The error `fn` throws, as a ConnectError the way Connect's handlers see it. */
const raised = (fn: () => unknown, code = Code.Internal) =>
  failureOf(fn, "a throw", (error) => ConnectError.from(error, code));

const reasonOf = (error: ConnectError | undefined) => error?.findDetails(ErrorInfoSchema)[0]?.reason;
const create = AuditService.method.create;
const tail = AuditService.method.tail;

describe("misreported client faults become INVALID_ARGUMENT", () => {
  test("bytes that are not the protobuf message (parse binary)", async () => {
    const input = createMethodSerializationLookup(create, undefined, undefined, {
      readMaxBytes: 1 << 20,
      writeMaxBytes: 1 << 20,
    }).getI(true);
    const error = await raised(() => input.parse(new Uint8Array([0x0a, 0xff])));
    expect(error.code).toBe(Code.Internal);
    const fault = asClientFault(error, create);
    expect([fault?.code, reasonOf(fault)]).toEqual([Code.InvalidArgument, "MALFORMED_MESSAGE"]);
  });

  test("a compressed message without an encoding", async () => {
    const error = await raised(() => envelopeDecompress({ flags: 1, data: new Uint8Array(1) }, null, 1 << 20));
    expect(reasonOf(asClientFault(error, create))).toBe("MALFORMED_MESSAGE");
  });

  test("a compressed message cut short", async () => {
    const truncated = gzipSync(Buffer.from("an audit event")).subarray(0, 12);
    const error = await raised(() => compressionGzip.decompress(truncated, 1 << 20));
    expect(error.code).toBe(Code.Internal);
    expect(reasonOf(asClientFault(error, create))).toBe("MALFORMED_MESSAGE");
  });

  test.each([
    ["no message", []],
    ["two messages", [{}, {}]],
  ])("a server-streaming call with %s", async (_name, messages) => {
    const spec = createServiceImplSpec(AuditService, {}).methods.tail as MethodImplSpec;
    const context = createHandlerContext({
      ...spec,
      service: AuditService,
      requestMethod: "POST",
      protocolName: "test",
      url: "/audit.v1.AuditService/Tail",
    });
    const error = await raised(async () => {
      const input = (async function* () {
        yield* messages;
      })();
      for await (const _ of transformInvokeImplementation(spec, context, [])(input as never));
    });
    expect(error.code).toBe(Code.Unimplemented);
    expect(reasonOf(asClientFault(error, tail))).toBe("MALFORMED_MESSAGE");
    expect(tail.methodKind).toBe("server_streaming");
  });
});

describe("JSON connect-es could not read gets a reason and a hint", () => {
  const json = (value: unknown) => raised(() => fromJson(create.input, value as never), Code.InvalidArgument);

  test("an unknown key", async () => {
    const fault = asClientFault(await json({ nope: 1 }), create);
    expect(reasonOf(fault)).toBe("UNKNOWN_FIELD");
    expect(fault?.findDetails(ErrorInfoSchema)[0]?.metadata.field).toBe("nope");
  });

  test("a field of the wrong type", async () => {
    const fault = asClientFault(await json({ tenant: 5 }), create);
    expect(reasonOf(fault)).toBe("INVALID_FIELD");
    expect(fault?.findDetails(ErrorInfoSchema)[0]?.metadata.field).toBe("tenant");
  });

  test("a message that is not a JSON object", async () => {
    const fault = asClientFault(await json([1]), create);
    expect(reasonOf(fault)).toBe("MALFORMED_MESSAGE");
  });

  test("only the call's own request message is the request: another message's type is a field's", async () => {
    const fault = asClientFault(await json([1]), tail);
    expect([reasonOf(fault), fault?.findDetails(ErrorInfoSchema)[0]?.metadata]).toEqual([
      "INVALID_FIELD",
      { type: create.input.typeName },
    ]);
  });

  // docs/errors.md: a value of the wrong type is INVALID_FIELD, whatever the field's type; protobuf-es names the
  // type it could not read for a message, enum or well-known type, not the field.
  test.each([
    ["a message field given a number", { event: 5 }, "audit.v1.AuditEvent"],
    ["an enum value that names none", { event: { action: "a", outcome: { status: "NO" } } }, "audit.v1.OutcomeStatus"],
    ["a timestamp that is not RFC 3339", { event: { action: "a", occurredAt: "x" } }, "google.protobuf.Timestamp"],
    ["a Struct given a number", { event: { action: "a", attributes: 5 } }, "google.protobuf.Struct"],
  ])("%s", async (_what, value, type) => {
    const fault = asClientFault(await json(value), create);
    expect([reasonOf(fault), fault?.findDetails(ErrorInfoSchema)[0]?.metadata]).toEqual(["INVALID_FIELD", { type }]);
  });

  test("JSON that is not UTF-8, read as the service reads it (a fatal TextDecoder)", async () => {
    const input = createMethodSerializationLookup(
      create,
      undefined,
      // Not in connect-es's option type, yet passed on to its JSON parsing (src/app.ts sets it the same way).
      { textDecoder: new TextDecoder("utf-8", { fatal: true }) } as object,
      { readMaxBytes: 1 << 20, writeMaxBytes: 1 << 20 },
    ).getI(false);
    const error = await raised(() => input.parse(new Uint8Array([0x7b, 0xff, 0x7d])), Code.InvalidArgument);
    expect(error.code).toBe(Code.InvalidArgument);
    expect(reasonOf(asClientFault(error, create))).toBe("MALFORMED_MESSAGE");
  });
});
