import { create, type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import {
  type BadRequest,
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import type { Binding } from "./bindings.js";

/** What the caller calls the request body when the route's body is one field of the request message. */
export const BODY_PATH = "(body)";

/**
 * A request field path as the RPC names it (`event.actor.id`, `page_size`, `events[3].occurred_at`) turned into the
 * one the REST caller wrote: relative to the body when the body is one field (`actor.id`), a query parameter as it
 * was spelled (`pageSize`), otherwise each field by its JSON name. Paths it cannot follow are kept.
 */
export function restFieldPath(binding: Binding, queryNames: ReadonlyMap<string, string>, path: string): string {
  const parts = path.split(/\.(?![^[]*\])/).map((part) => /^([A-Za-z_]\w*)(.*)$/.exec(part));
  if (parts.some((p) => p === null)) return path;
  const segments = (parts as RegExpExecArray[]).map(([, name, suffix]) => ({
    name: name as string,
    suffix: suffix ?? "",
  }));
  let message: DescMessage | undefined = binding.rpc.input;
  if (binding.body.kind === "field" && segments[0]?.name === binding.body.field.name) {
    const [body] = segments.splice(0, 1);
    if (segments.length === 0) return BODY_PATH + (body?.suffix ?? "");
    message = binding.body.field.message;
  } else {
    for (let n = segments.length; n > 0; n--) {
      const written = queryNames.get(segments.map((s) => s.name).join("."));
      if (written !== undefined)
        return [written + (segments[n - 1]?.suffix ?? ""), ...rest(segments.slice(n))].join(".");
    }
  }
  return rest(segments).join(".");

  function rest(tail: { name: string; suffix: string }[]): string[] {
    return tail.map(({ name, suffix }) => {
      const field = message?.fields.find((f) => f.name === name);
      message = field?.message;
      return (field?.jsonName ?? name) + suffix;
    });
  }
}

/**
 * The error with every field path it names (BadRequest violations, ErrorInfo's `field`, and the message's
 * `path: why` parts) renamed; the same error when nothing changes.
 */
export function renameFields(error: ConnectError, rename: (path: string) => string): ConnectError {
  const renamed = new Map<string, string>();
  const to = (path: string) => {
    const name = rename(path);
    if (name !== path) renamed.set(path, name);
    return name;
  };
  const details = error.details.map((detail) => {
    const typeName = "desc" in detail ? detail.desc.typeName : detail.type;
    if (typeName === ErrorInfoSchema.typeName) {
      const info = detailValue<ErrorInfo>(detail, ErrorInfoSchema);
      const field = info.metadata.field;
      if (field === undefined) return detail;
      return { desc: ErrorInfoSchema, value: { ...info, metadata: { ...info.metadata, field: to(field) } } };
    }
    if (typeName === BadRequestSchema.typeName) {
      const bad = detailValue<BadRequest>(detail, BadRequestSchema);
      const fieldViolations = bad.fieldViolations.map((v) => ({ ...v, field: to(v.field) }));
      return { desc: BadRequestSchema, value: { ...bad, fieldViolations } };
    }
    return detail;
  });
  if (renamed.size === 0) return error;
  const olds = [...renamed.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const message = error.rawMessage.replace(
    new RegExp(`(^|; |fields: )(${olds.join("|")})(?=: )`, "g"),
    (_, before: string, old: string) => before + renamed.get(old),
  );
  const result = new ConnectError(message, error.code, error.metadata, undefined, error.cause);
  result.details = details;
  return result;
}

function detailValue<T>(detail: ConnectError["details"][number], schema: DescMessage): T {
  if ("desc" in detail) return create(schema, detail.value as never) as T;
  return fromBinary(schema, detail.value) as T;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
