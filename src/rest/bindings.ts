import {
  create,
  type DescField,
  type DescMessage,
  type DescMethod,
  getOption,
  hasOption,
  type JsonValue,
  ScalarType,
  toJson,
} from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { hasStringForm, type Leaf, leafOf } from "./field-value.js";
import { type PathTemplate, parsePathTemplate, type TemplateVariable } from "./path-template.js";
import { RouteTable } from "./route-table.js";

/** A path variable resolved against the request message. */
export interface PathField {
  variable: TemplateVariable;
  /** From the request message down to the leaf. */
  fields: DescField[];
  leaf: Leaf;
  /** Proto field names joined by dots, as in the template. */
  name: string;
}

export type BodyMapping = { kind: "none" } | { kind: "all" } | { kind: "field"; field: DescField };

/** One HTTP binding of an RPC: everything a request needs, worked out at start-up. */
export interface Binding {
  rpc: DescMethod;
  httpMethod: string;
  template: PathTemplate;
  pathFields: PathField[];
  /** Dotted proto names of the fields the path sets; the query may not set them again. */
  pathBound: Set<string>;
  body: BodyMapping;
  response: { field: DescField; whenUnset: string } | undefined;
}

/** An annotation the transcoder cannot serve; thrown at start-up, naming the RPC. */
export class HttpRuleError extends Error {}

/**
 * The routes of every annotated method. Unannotated methods stay RPC-only.
 * Throws HttpRuleError on any rule it cannot serve exactly and on conflicting routes.
 */
export function buildRouteTable(methods: readonly DescMethod[]): {
  table: RouteTable<Binding>;
  bindings: Binding[];
} {
  const table = new RouteTable<Binding>();
  const bindings: Binding[] = [];
  const rpcPaths = new Set(methods.map((m) => `/${m.parent.typeName}/${m.name}`));
  for (const rpc of methods) {
    if (!hasOption(rpc, http)) continue;
    const rule = getOption(rpc, http);
    const where = `${rpc.parent.typeName}.${rpc.name}`;
    if (rpc.methodKind === "client_streaming" || rpc.methodKind === "bidi_streaming") {
      throw new HttpRuleError(`${where}: ${rpc.methodKind.replace("_", "-")} RPCs cannot be served over REST`);
    }
    const rules = [rule, ...rule.additionalBindings];
    for (const additional of rule.additionalBindings) {
      if (additional.additionalBindings.length > 0) {
        throw new HttpRuleError(`${where}: additional_bindings may not nest further additional_bindings`);
      }
    }
    for (const r of rules) {
      const binding = compile(r, rpc, where);
      // Wildcard templates may also match RPC paths, but those requests never reach REST routing.
      if (rpcPaths.has(binding.template.source)) {
        throw new HttpRuleError(`${where}: ${binding.template.source} is an RPC path; REST cannot take it over`);
      }
      const existing = table.add(binding.template, binding.httpMethod, binding);
      if (existing) throw new HttpRuleError(`${where}: ${describe(binding)} conflicts with ${describe(existing)}`);
      bindings.push(binding);
    }
  }
  return { table, bindings };
}

function describe(b: Binding): string {
  return `${b.httpMethod} ${b.template.source} of ${b.rpc.parent.typeName}.${b.rpc.name}`;
}

function compile(rule: HttpRule, rpc: DescMethod, where: string): Binding {
  const { pattern } = rule;
  let httpMethod: string;
  let path: string;
  switch (pattern.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      httpMethod = pattern.case.toUpperCase();
      path = pattern.value;
      break;
    case "custom":
      httpMethod = pattern.value.kind.toUpperCase();
      path = pattern.value.path;
      if (!/^[A-Z]+$/.test(httpMethod)) throw new HttpRuleError(`${where}: custom kind "${pattern.value.kind}"`);
      break;
    default:
      throw new HttpRuleError(`${where}: an http rule without a method and path`);
  }
  let template: PathTemplate;
  try {
    template = parsePathTemplate(path);
  } catch (error) {
    throw new HttpRuleError(`${where}: ${(error as Error).message}`);
  }
  const input = rpc.input;
  const pathFields = template.variables.map((variable) => {
    const name = variable.fieldPath.join(".");
    const fields = resolvePath(input, variable.fieldPath, `${where}: path variable {${name}}`);
    const last = fields[fields.length - 1] as DescField;
    const leaf = leafOf(last);
    if (last.fieldKind === "list" || last.fieldKind === "map" || !leaf || !hasStringForm(leaf)) {
      throw new HttpRuleError(`${where}: path variable {${name}} must be a singular scalar or enum field`);
    }
    if (variable.multiSegment && !(leaf.kind === "scalar" && leaf.scalar === ScalarType.STRING)) {
      throw new HttpRuleError(`${where}: path variable {${name}} spans several segments, so it must be a string`);
    }
    return { variable, fields, leaf, name };
  });

  let body: BodyMapping;
  if (rule.body === "") body = { kind: "none" };
  else if (rule.body === "*") body = { kind: "all" };
  else body = { kind: "field", field: topLevelField(input, rule.body, `${where}: body`) };
  if (body.kind !== "none" && (httpMethod === "GET" || httpMethod === "HEAD")) {
    throw new HttpRuleError(`${where}: a ${httpMethod} binding cannot take a body`);
  }
  if (body.kind === "field") {
    const bodyName = body.field.name;
    if (pathFields.some((p) => p.name === bodyName)) {
      throw new HttpRuleError(`${where}: field ${bodyName} is bound by both the path and the body`);
    }
  }

  let response: Binding["response"];
  if (rule.responseBody !== "") {
    const field = topLevelField(rpc.output, rule.responseBody, `${where}: response_body`);
    response = { field, whenUnset: JSON.stringify(unsetJson(rpc.output, field)) };
  }

  return {
    rpc,
    httpMethod,
    template,
    pathFields,
    pathBound: new Set(pathFields.map((p) => p.name)),
    body,
    response,
  };
}

function resolvePath(message: DescMessage, names: string[], what: string): DescField[] {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const name of names) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === name);
    if (!current || !field) throw new HttpRuleError(`${what}: ${message.typeName} has no field ${names.join(".")}`);
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}

function topLevelField(message: DescMessage, name: string, what: string): DescField {
  const field = message.fields.find((f) => f.name === name);
  if (!field) throw new HttpRuleError(`${what}: ${message.typeName} has no field "${name}"`);
  return field;
}

/**
 * What response_body yields when the RPC leaves the field unset: its proto-JSON default (`[]`, `{}`, `0`, `""`, the
 * zero enum), `{}` for a message, and `null` for a well-known type or an optional scalar, which have no empty form.
 */
function unsetJson(message: DescMessage, field: DescField): JsonValue {
  const defaults = toJson(message, create(message), { alwaysEmitImplicit: true }) as Record<string, JsonValue>;
  const value = defaults[field.jsonName];
  if (value !== undefined) return value;
  return field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.") ? {} : null;
}
