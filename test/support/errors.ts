import { Code, ConnectError } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { expect } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

export interface ExpectedError {
  code: Code;
  reason?: string;
  /** Field paths the google.rpc.BadRequest detail must name. */
  fields?: string[];
}

/**
 * What a call that must fail failed with, read by `as`: by default a ConnectError, as Connect's clients and handlers
 * see any error. `call` is a promise or a function (which may throw at once). A call that succeeds fails the test
 * (`expected` says what it should have done); `as` rethrows what is not the kind of failure the test is about.
 */
export async function failureOf<E = ConnectError>(
  call: Promise<unknown> | (() => unknown),
  expected = "an error",
  as: (error: unknown) => E = (error) => ConnectError.from(error) as E,
): Promise<E> {
  let error: unknown;
  try {
    await (typeof call === "function" ? call() : call);
  } catch (e) {
    error = e ?? new Error(`rejected with ${e}`);
  }
  if (error === undefined) throw new Error(`expected ${expected}, but the call succeeded`);
  return as(error);
}

/** For failureOf: the error when it is a `kind`, else rethrown (it is not a failure this test expects). */
export function instanceOf<E>(kind: new (...args: never[]) => E): (error: unknown) => E {
  return (error) => {
    if (error instanceof kind) return error;
    throw error;
  };
}

/** For failureOf: a @grpc/grpc-js call's error, which carries a numeric status code. */
export function grpcServiceError(error: unknown): grpc.ServiceError {
  if (typeof (error as grpc.ServiceError | undefined)?.code === "number") return error as grpc.ServiceError;
  throw error;
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
