import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { consistencyProof, inclusionProof, leafHash, rootHash } from "../../src/vlog/merkle.js";
import { checkpointText, generateSignerKey, parseSignerKey } from "../../src/vlog/note.js";
import { Edge, type FullTile, tileHashes, tilesRead } from "../../src/vlog/tiles.js";

/**
 * A second implementation, written from RFC 9162 section 2.1 alone: MTH, PATH and PROOF by their recursive
 * definitions over the leaf list, and the verification algorithms of 2.1.3.2 and 2.1.4.2. The service's tiles and
 * proofs are checked against it for every tree size from 1 to 2000.
 */
const H = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest();
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

class Rfc9162 {
  private readonly memo = new Map<string, Buffer>();
  constructor(private readonly data: Buffer[]) {}

  /** MTH(D[a:b]). */
  mth(a: number, b: number): Buffer {
    if (b - a === 0) return H();
    if (b - a === 1) return H(LEAF, this.data[a] as Buffer);
    const key = `${a}:${b}`;
    let hash = this.memo.get(key);
    if (!hash) {
      const split = a + k(b - a);
      hash = H(NODE, this.mth(a, split), this.mth(split, b));
      this.memo.set(key, hash);
    }
    return hash;
  }

  /** PATH(m, D[a:b]). */
  path(m: number, a: number, b: number): Buffer[] {
    const n = b - a;
    if (n === 1) return [];
    const split = k(n);
    return m < split
      ? [...this.path(m, a, a + split), this.mth(a + split, b)]
      : [...this.path(m - split, a + split, b), this.mth(a, a + split)];
  }

  /** SUBPROOF(m, D[a:b], b). */
  subproof(m: number, a: number, b: number, whole: boolean): Buffer[] {
    const n = b - a;
    if (m === n) return whole ? [] : [this.mth(a, b)];
    const split = k(n);
    return m <= split
      ? [...this.subproof(m, a, a + split, whole), this.mth(a + split, b)]
      : [...this.subproof(m - split, a + split, b, false), this.mth(a, a + split)];
  }
}

/** Hash lists compared as hex: vitest's deep equality walks a Buffer byte by byte. */
const hex = (hashes: Buffer[]) => hashes.map((h) => h.toString("hex")).join(" ");

const lsb = (n: number) => n % 2 === 1;

/** RFC 9162 2.1.3.2. */
function verifyInclusion(index: number, size: number, leaf: Buffer, path: Buffer[], root: Buffer): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      r = H(NODE, p, r);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = H(NODE, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 2.1.4.2. */
function verifyConsistency(first: number, second: number, firstHash: Buffer, secondHash: Buffer, proof: Buffer[]) {
  if (first === second) return proof.length === 0 && firstHash.equals(secondHash);
  if (proof.length === 0) return false;
  const path = Number.isInteger(Math.log2(first)) ? [firstHash, ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (lsb(fn)) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Buffer;
  let sr = path[0] as Buffer;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = H(NODE, c, fr);
      sr = H(NODE, c, sr);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = H(NODE, sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return fr.equals(firstHash) && sr.equals(secondHash) && sn === 0;
}

/** A seeded generator, so a failure names a reproducible case. */
function random(seed: number) {
  let state = seed >>> 0;
  return (below: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % below;
  };
}

describe("leaf hashes", () => {
  it("hash a leaf given as text as its UTF-8 bytes, whatever its length and characters, one after another", () => {
    // Lengths on both sides of the buffer the hash writes its input into (it grows to the longest leaf met).
    const text = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 40 }),
      fc.string({ unit: "binary", minLength: 1000, maxLength: 3000 }),
      fc.string({ unit: fc.constantFrom("a", "é", "€", "😀", "\u0000", "\ud800"), minLength: 1020, maxLength: 20_000 }),
    );
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 6 }), (texts) => {
        for (const leaf of texts) {
          const bytes = Buffer.from(leaf);
          expect(leafHash(leaf).equals(H(LEAF, bytes))).toBe(true);
          expect(leafHash(bytes).equals(H(LEAF, bytes))).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("the Merkle tree against RFC 9162", () => {
  const data = Array.from({ length: 2000 }, (_, i) => Buffer.from(`leaf ${i} ${"x".repeat(i % 7)}`));
  const rfc = new Rfc9162(data);

  it("roots, audit paths and consistency proofs from tiles equal the RFC's for sizes 1 to 2000", () => {
    const edge = Edge.empty();
    const full = new Map<string, Buffer>();
    const next = random(9162);
    const fullTiles: FullTile[] = [];
    for (let size = 1; size <= data.length; size++) {
      edge.appendLeaf(data[size - 1] as Buffer, fullTiles);
      for (const tile of fullTiles.splice(0)) full.set(`${tile.level}/${tile.index}`, tile.hashes);
      const root = rfc.mth(0, size);
      expect(edge.root().equals(root), `root of ${size}`).toBe(true);
      // The stored edge reads back the same.
      expect(Edge.decode(size, edge.encode()).encode().equals(edge.encode())).toBe(true);
      const partial = edge.tiles();
      const perfect = tileHashes((level, index) => full.get(`${level}/${index}`) ?? partial(level, index));
      expect(rootHash(perfect, size).equals(root)).toBe(true);
      for (const index of new Set([size - 1, next(size)])) {
        const path = inclusionProof(perfect, index, size);
        expect(hex(path)).toBe(hex(rfc.path(index, 0, size)));
        expect(verifyInclusion(index, size, H(LEAF, data[index] as Buffer), path, root)).toBe(true);
        expect(verifyInclusion(index, size, H(LEAF, Buffer.from("forged")), path, root)).toBe(false);
        // A proof reads O(log n) tiles: at most two per level of perfect subtrees.
        expect(tilesRead((p) => inclusionProof(p, index, size)).length).toBeLessThanOrEqual(4);
      }
      for (const from of new Set([size, next(size) + 1])) {
        const proof = consistencyProof(perfect, from, size);
        expect(hex(proof), `consistency ${from} → ${size}`).toBe(hex(rfc.subproof(from, 0, size, true)));
        expect(verifyConsistency(from, size, rfc.mth(0, from), root, proof)).toBe(true);
        if (from < size) expect(verifyConsistency(from, size, H(Buffer.from("other")), root, proof)).toBe(false);
      }
    }
  });

  it("random consistency pairs over a tree of 70,000 leaves span three tile levels", () => {
    const leaves = Array.from({ length: 70_000 }, (_, i) => Buffer.from(String(i)));
    const big = new Rfc9162(leaves);
    const edge = Edge.empty();
    const full = new Map<string, Buffer>();
    const fullTiles: FullTile[] = [];
    for (const leaf of leaves) edge.appendLeaf(leaf, fullTiles);
    for (const tile of fullTiles) full.set(`${tile.level}/${tile.index}`, tile.hashes);
    expect(full.has("1/0")).toBe(true);
    const size = leaves.length;
    const partial = edge.tiles();
    const perfect = tileHashes((level, index) => full.get(`${level}/${index}`) ?? partial(level, index));
    const next = random(2026);
    for (let i = 0; i < 40; i++) {
      const second = next(size) + 1;
      const first = next(second) + 1;
      const proof = consistencyProof(perfect, first, second);
      expect(hex(proof)).toBe(hex(big.subproof(first, 0, second, true)));
      expect(verifyConsistency(first, second, big.mth(0, first), big.mth(0, second), proof)).toBe(true);
      const index = next(second);
      expect(
        verifyInclusion(
          index,
          second,
          H(LEAF, leaves[index] as Buffer),
          inclusionProof(perfect, index, second),
          big.mth(0, second),
        ),
      ).toBe(true);
    }
  });
});

describe("signed notes", () => {
  it("a generated key reads back, signs checkpoints a verifier key checks, and its id is the C2SP one", () => {
    const signer = parseSignerKey(generateSignerKey("example.com/log"));
    if (typeof signer === "string") throw new Error(signer);
    const note = signer.sign(checkpointText("example.com/log/acme", 5, randomBytes(32)));
    const [name = "", id = "", ...key] = signer.verifierKey.split("+");
    expect(name).toBe("example.com/log");
    const raw = Buffer.from(key.join("+"), "base64");
    expect(
      H(Buffer.from(`${name}\n`), raw)
        .subarray(0, 4)
        .toString("hex"),
    ).toBe(id);
    const [text, signature] = note.split("\n\n") as [string, string];
    expect(signature).toMatch(/^\u2014 example\.com\/log [A-Za-z0-9+/]+=*\n$/u);
    expect(text.split("\n")).toHaveLength(3);
  });

  it("refuses signer keys that are malformed or whose id does not match", () => {
    const good = generateSignerKey("log");
    expect(parseSignerKey("log+abcd+AAAA")).toMatch(/PRIVATE\+KEY/);
    expect(parseSignerKey(good.replace(/\+([0-9a-f]{8})\+/, "+00000000+"))).toMatch(/key id/);
    expect(parseSignerKey(good.replace("+log+", "+lo g+"))).toMatch(/name/);
  });
});
