import { type DescField, type DescMessage, fromBinary, ScalarType } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";

/** Bytes that are not a valid encoding of the message they are sent as, and why. */
export interface Malformed {
  label: string;
  bytes: Uint8Array;
}

/** The oracle: whether protobuf-es decodes these bytes as the message. */
export function decodes(desc: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromBinary(desc, bytes);
    return true;
  } catch {
    return false;
  }
}

const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const tag = (field: number, wireType: WireType) => new BinaryWriter().tag(field, wireType).finish();
const varint = (n: number) => new BinaryWriter().uint32(n).finish();
/** Every field number `desc` declares, and unknown ones a little past the highest: taken from the descriptor. */
const fieldNumbers = (desc: DescMessage) =>
  fc.integer({ min: 1, max: Math.max(0, ...desc.fields.map((f) => f.number)) + 24 });

/** Well-formed leading fields (scalars with plausible values), so the fault sits after real content. */
function validPrefix(desc: DescMessage): fc.Arbitrary<Uint8Array> {
  const scalars = desc.fields.filter((f) => f.fieldKind === "scalar" || f.fieldKind === "enum");
  if (scalars.length === 0) return fc.constant(new Uint8Array(0));
  return fc
    .subarray(scalars)
    .chain((fields) => fc.tuple(...fields.map(encodedField)))
    .map((parts) => concat(...parts));
}

function encodedField(field: DescField): fc.Arbitrary<Uint8Array> {
  const w = () => new BinaryWriter();
  if (field.fieldKind === "enum") return fc.nat(3).map((n) => w().tag(field.number, WireType.Varint).int32(n).finish());
  if (field.fieldKind !== "scalar") return fc.constant(new Uint8Array(0));
  switch (field.scalar) {
    case ScalarType.STRING:
      return fc
        .string({ unit: "grapheme-ascii", maxLength: 12 })
        .map((s) => w().tag(field.number, WireType.LengthDelimited).string(s).finish());
    case ScalarType.BOOL:
      return fc.boolean().map((b) => w().tag(field.number, WireType.Varint).bool(b).finish());
    case ScalarType.INT64:
      return fc
        .bigInt({ min: 0n, max: 1n << 40n })
        .map((n) => w().tag(field.number, WireType.Varint).int64(n).finish());
    default:
      return fc.nat(1000).map((n) => w().tag(field.number, WireType.Varint).int32(n).finish());
  }
}

/** Byte sequences that are never valid UTF-8. */
const INVALID_UTF8: [string, number[]][] = [
  ["0xFF byte", [0xff]],
  ["lone continuation byte", [0x80]],
  ["overlong slash", [0xc0, 0xaf]],
  ["UTF-16 surrogate", [0xed, 0xa0, 0x80]],
  ["code point past U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ["truncated 3-byte sequence", [0xe2, 0x82]],
  ["lead byte then ASCII", [0xe2, 0x28, 0xa1]],
];

/** Paths from the message to a string field, through singular and repeated message fields (not maps). */
function stringPaths(desc: DescMessage, depth = 3, seen = new Set<string>()): DescField[][] {
  const paths: DescField[][] = [];
  for (const field of desc.fields) {
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) paths.push([field]);
    if (field.fieldKind === "list" && field.listKind === "scalar" && field.scalar === ScalarType.STRING) {
      paths.push([field]);
    }
    const child =
      field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")
        ? field.message
        : undefined;
    if (child && depth > 1 && !seen.has(child.typeName)) {
      for (const rest of stringPaths(child, depth - 1, new Set([...seen, desc.typeName]))) paths.push([field, ...rest]);
    }
  }
  return paths;
}

/** The bytes of a value at `path`, each message level wrapped around the next. */
function nest(path: DescField[], leaf: Uint8Array): Uint8Array {
  let inner = leaf;
  for (const field of [...path].reverse())
    inner = concat(tag(field.number, WireType.LengthDelimited), varint(inner.length), inner);
  return inner;
}

/**
 * Malformed encodings of `desc`, each a different way to break the wire format. Every one is checked against the
 * oracle, so a generator that produced valid bytes would fail loudly rather than test nothing.
 */
export function malformed(desc: DescMessage): fc.Arbitrary<Malformed> {
  const prefix = validPrefix(desc);
  const fieldNumber = fieldNumbers(desc);
  // protobuf-es reads a known numeric or enum field by its declared type whatever the wire type says, so a length
  // prefix only promises bytes for fields it would read as length-delimited: strings, bytes, messages, repeated and
  // map fields, and unknown ones. (Singular enums once slipped through: a declared length read as an enum value.)
  const lengthDelimited = fieldNumber.filter((n) => {
    const field = desc.fields.find((f) => f.number === n);
    if (field === undefined || field.fieldKind === "message" || field.fieldKind === "list") return true;
    if (field.fieldKind === "map") return true;
    return field.fieldKind === "scalar" && (field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES);
  });
  const kinds: fc.Arbitrary<Malformed>[] = [
    fc
      .record({ prefix, field: lengthDelimited, declared: fc.integer({ min: 1, max: 1 << 28 }), sent: fc.nat(64) })
      .map(({ prefix, field, declared, sent }) => {
        const given = Math.min(sent, declared - 1);
        return {
          label: `field ${field} declares ${declared} bytes, has ${given}`,
          bytes: concat(
            prefix,
            tag(field, WireType.LengthDelimited),
            varint(declared),
            new Uint8Array(given).fill(0x41),
          ),
        };
      }),
    fc.record({ prefix, field: fieldNumber, n: fc.integer({ min: 1, max: 9 }) }).map(({ prefix, field, n }) => ({
      label: `field ${field} varint cut after ${n} bytes`,
      bytes: concat(prefix, tag(field, WireType.Varint), new Uint8Array(n).fill(0xff)),
    })),
    fc.record({ prefix, field: fieldNumber, wireType: fc.constantFrom(6, 7) }).map(({ prefix, field, wireType }) => ({
      label: `field ${field} with undefined wire type ${wireType}`,
      bytes: concat(prefix, varint((field << 3) | wireType)),
    })),
    fc.record({ prefix, wireType: fc.constantFrom(0, 1, 2, 5) }).map(({ prefix, wireType }) => ({
      label: `field number 0, wire type ${wireType}`,
      bytes: concat(prefix, varint(wireType), new Uint8Array(8)),
    })),
    fc.record({ prefix, field: fieldNumber }).map(({ prefix, field }) => ({
      label: `field ${field} end-group without a start`,
      bytes: concat(prefix, tag(field, WireType.EndGroup)),
    })),
    fc.record({ prefix, levels: fc.integer({ min: 101, max: 2000 }) }).map(({ prefix, levels }) => ({
      label: `groups nested ${levels} deep`,
      bytes: concat(
        prefix,
        ...Array.from({ length: levels }, () => tag(1000, WireType.StartGroup)),
        ...Array.from({ length: levels }, () => tag(1000, WireType.EndGroup)),
      ),
    })),
    fc
      .uint8Array({ minLength: 1, maxLength: 200 })
      .filter((bytes) => !decodes(desc, bytes))
      .map((bytes) => ({ label: `random bytes ${Buffer.from(bytes.subarray(0, 16)).toString("hex")}…`, bytes })),
  ];
  const paths = stringPaths(desc);
  if (paths.length > 0) {
    kinds.push(
      fc
        .record({
          path: fc.constantFrom(...paths),
          bad: fc.constantFrom(...INVALID_UTF8),
          before: fc.string({ unit: "grapheme-ascii", maxLength: 8 }),
          after: fc.string({ unit: "grapheme-ascii", maxLength: 8 }),
        })
        .map(({ path, bad, before, after }) => {
          const text = concat(Buffer.from(before), Uint8Array.from(bad[1]), Buffer.from(after));
          const last = path[path.length - 1] as DescField;
          const leaf = concat(tag(last.number, WireType.LengthDelimited), varint(text.length), text);
          return {
            label: `${bad[0]} in ${path.map((f) => f.name).join(".")}`,
            bytes: nest(path.slice(0, -1), leaf),
          };
        }),
    );
  }
  return fc.oneof(...kinds).map((m) => {
    if (decodes(desc, m.bytes)) throw new Error(`generator bug: "${m.label}" decodes as ${desc.typeName}`);
    return m;
  });
}
