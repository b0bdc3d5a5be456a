import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

export interface ExpectedError {
  code: Code;
  reason?: string;
  /** Field paths the google.rpc.BadRequest detail must name. */
  fields?: string[];
}

/** The error a call that must fail failed with; a call that succeeds fails the test. */
export async function failureOf(call: Promise<unknown>, expected = "an error"): Promise<ConnectError> {
  return call.then(
    () => {
      throw new Error(`expected ${expected}, but the call succeeded`);
    },
    (e: unknown) => ConnectError.from(e),
  );
}

/** Awaits a call that must fail, and checks its code, ErrorInfo reason and field violations. */
export async function expectError(call: Promise<unknown>, expected: ExpectedError): Promise<ConnectError> {
  const error = await failureOf(call, Code[expected.code]);
  expect(Code[error.code], error.message).toBe(Code[expected.code]);
  if (expected.reason) {
    const info = error.findDetails(ErrorInfoSchema)[0];
    expect(info?.reason, error.message).toBe(expected.reason);
    expect(info?.domain).toBe("audit.v1");
  }
  if (expected.fields) {
    const fields = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    expect(fields).toEqual(expect.arrayContaining(expected.fields));
  }
  return error;
}
