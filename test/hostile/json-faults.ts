import { type DescField, type DescMessage, fromJsonString, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import fc from "fast-check";

/** A JSON body that must not decode, and why. */
export interface JsonFault {
  label: string;
  bytes: Uint8Array;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The oracle: whether the bytes are UTF-8 proto-JSON of the message, as the service reads it (no unknown fields). */
export function decodesJson(desc: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromJsonString(desc, strictUtf8.decode(bytes), { ignoreUnknownFields: false });
    return true;
  } catch {
    return false;
  }
}

/** JSON text with raw tokens (numbers JSON.stringify cannot write, like 1e400) spliced in for their placeholders. */
function jsonText(value: JsonValue, raw: Map<string, string>): Buffer {
  let text = JSON.stringify(value);
  for (const [placeholder, token] of raw) text = text.replace(JSON.stringify(placeholder), token);
  return Buffer.from(text);
}

/** Paths (JSON names) to the fields of `desc` and of its singular message fields, one level down. */
function fieldPaths(desc: DescMessage): { path: string[]; field: DescField }[] {
  const out: { path: string[]; field: DescField }[] = [];
  for (const field of desc.fields) {
    out.push({ path: [field.jsonName], field });
    if (field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.")) {
      for (const inner of field.message.fields) out.push({ path: [field.jsonName, inner.jsonName], field: inner });
    }
  }
  return out;
}

function withValue(base: JsonObject, path: string[], value: JsonValue): JsonObject {
  const copy = structuredClone(base);
  let target = copy;
  for (const key of path.slice(0, -1)) {
    const next = target[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) target[key] = {};
    target = target[key] as JsonObject;
  }
  // defineProperty, so that "__proto__" becomes a key of the JSON text rather than a prototype.
  Object.defineProperty(target, path[path.length - 1] as string, { value, enumerable: true, writable: true });
  return copy;
}

/** Values of every JSON type and raw number tokens out of any protobuf range; the oracle keeps the wrong ones. */
const WRONG_VALUES: [string, JsonValue | { raw: string }][] = [
  ["a number", 5],
  ["a fraction", 1.5],
  ["true", true],
  ["an array", ["x"]],
  ["an object", { x: 1 }],
  ["a word", "word"],
  ["an empty string", ""],
  ["2^31", { raw: "2147483648" }],
  ["-2^31-1", { raw: "-2147483649" }],
  ["2^63", { raw: "9223372036854775808" }],
  ["-2^63-1", { raw: "-9223372036854775809" }],
  ["1e400", { raw: "1e400" }],
  ["-1e400", { raw: "-1e400" }],
  ["1e40", { raw: "1e40" }],
  ["a hex string", "0x10"],
  ["a numeric string with junk", "12abc"],
  ["NaN as a string", "NaN"],
  ["an enum name that does not exist", "NO_SUCH_VALUE"],
  ["a bad timestamp", "2024-13-45T25:61:61Z"],
  ["a year past 9999", "10000-01-01T00:00:00Z"],
];

/**
 * Malformed JSON bodies for a request of type `desc`, built around a valid one: cut short, garbage, invalid UTF-8,
 * nesting far past any limit, values of the wrong type or out of range, unknown fields, a non-object document.
 * Each is checked against the oracle; what decodes is dropped (it belongs to the invalid-request tables instead).
 */
export function jsonFaults(desc: DescMessage, base: JsonObject): fc.Arbitrary<JsonFault> {
  const baseText = Buffer.from(JSON.stringify(base));
  const paths = fieldPaths(desc);
  const kinds: fc.Arbitrary<JsonFault>[] = [
    fc.integer({ min: 1, max: Math.max(1, baseText.length - 1) }).map((n) => ({
      label: `JSON cut to ${n} of ${baseText.length} bytes`,
      bytes: baseText.subarray(0, n),
    })),
    fc
      .string({ unit: fc.constantFrom(...'{}[]":,0123456789.eE+-tfnul \\ax'.split("")), minLength: 1, maxLength: 40 })
      .map((text) => ({ label: `garbage ${JSON.stringify(text)}`, bytes: Buffer.from(text) })),
    fc
      .record({ at: fc.nat(), bad: fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80], [0xe2, 0x82]) })
      .map(({ at, bad }) => {
        const i = at % (baseText.length + 1);
        return {
          label: `invalid UTF-8 ${Buffer.from(bad).toString("hex")} at byte ${i}`,
          bytes: Buffer.concat([baseText.subarray(0, i), Buffer.from(bad), baseText.subarray(i)]),
        };
      }),
    fc.constantFrom("[]", "1", '"text"', "true", "[{}]", '"\\u0000"').map((doc) => ({
      label: `document ${doc}`,
      bytes: Buffer.from(doc),
    })),
  ];
  // Messages without fields (GetCallerRequest) have nothing to nest into or mistype.
  if (paths.length > 0) {
    kinds.push(
      fc
        .record({
          target: fc.constantFrom(...paths),
          depth: fc.oneof(fc.integer({ min: 101, max: 2000 }), fc.integer({ min: 2000, max: 100_000 })),
          shape: fc.constantFrom("arrays", "objects"),
        })
        .map(({ target, depth, shape }) => {
          const nested =
            shape === "arrays"
              ? "[".repeat(depth) + "]".repeat(depth)
              : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
          const raw = new Map([["\u0000deep", nested]]);
          return {
            label: `${target.path.join(".")} = ${shape} nested ${depth} deep`,
            bytes: jsonText(withValue(base, target.path, "\u0000deep"), raw),
          };
        }),
      fc
        .record({ target: fc.constantFrom(...paths), wrong: fc.constantFrom(...WRONG_VALUES) })
        .map(({ target, wrong }) => {
          const [what, value] = wrong;
          const raw = new Map<string, string>();
          let json: JsonValue;
          if (typeof value === "object" && value !== null && "raw" in value) {
            raw.set("\u0000raw", value.raw as string);
            json = "\u0000raw";
          } else {
            json = value as JsonValue;
          }
          return {
            label: `${target.path.join(".")} = ${what}`,
            bytes: jsonText(withValue(base, target.path, json), raw),
          };
        }),
      fc
        .record({
          target: fc.constantFrom<string[]>(
            [],
            ...paths.filter((p) => p.field.fieldKind === "message").map((p) => p.path),
          ),
          name: fc.constantFrom("bogus", "__proto__", "constructor", "Event", "tenant_id"),
        })
        .map(({ target, name }) => ({
          label: `unknown field ${[...target, name].join(".")}`,
          bytes: Buffer.from(JSON.stringify(withValue(base, [...target, name], 1))),
        })),
    );
  }
  return fc.oneof(...kinds).filter((f) => !decodesJson(desc, f.bytes));
}
