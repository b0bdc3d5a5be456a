import { createHash, hash } from "node:crypto";

/**
 * RFC 9162 Merkle tree hashing and proofs (section 2.1), over any store of perfect subtree hashes. A perfect subtree
 * (height, index) covers the leaves [index·2^height, (index+1)·2^height); every MTH the RFC's recursions ask for is
 * such a subtree or splits into them, so a proof needs only the O(log n) perfect subtrees along its path.
 */

export type Hash = Buffer;

/** Returns the hash of the perfect subtree (height, index); the caller only asks for subtrees inside the tree. */
export type PerfectHashes = (height: number, index: number) => Hash;

export const HASH_BYTES = 32;

/**
 * SHA-256(0x00 ‖ data) as 32 latin1 ("binary") characters; data given as text is its UTF-8 bytes. The write path keeps hashes in
 * this form: crypto.hash returning a Buffer costs three times as much as the hash itself for inputs this small, and
 * one call on one buffer half of createHash().update().digest(). The prefixed input is written into one buffer kept
 * for the purpose rather than allocated per hash.
 */
export function leafDigest(data: Uint8Array | string): string {
  let length: number;
  if (typeof data === "string") {
    length = 1 + scratch.write(data, 1);
    // Less than a character's four bytes left: the text may not all have fitted.
    if (length + 4 > scratch.length) {
      scratch = Buffer.allocUnsafe(2 * (1 + Buffer.byteLength(data)));
      length = 1 + scratch.write(data, 1);
    }
  } else {
    length = 1 + data.length;
    if (length > scratch.length) scratch = Buffer.allocUnsafe(2 * length);
    scratch.set(data, 1);
  }
  scratch[0] = 0;
  return hash("sha256", scratch.subarray(0, length), "binary");
}

export function leafHash(data: Uint8Array | string): Hash {
  return Buffer.from(leafDigest(data), "binary");
}

/** SHA-256(0x01 ‖ pair) as 32 latin1 characters, of two hashes side by side (64 bytes). */
export function pairDigest(pair: Uint8Array): string {
  node.set(pair, 1);
  return hash("sha256", node, "binary");
}

/** SHA-256(0x01 ‖ left ‖ right), of two hashes. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Hash {
  node.set(left, 1);
  node.set(right, 1 + HASH_BYTES);
  return hash("sha256", node, "buffer");
}

/** MTH({}): the hash of an empty string. */
export const EMPTY_ROOT: Hash = createHash("sha256").digest();

/** leafDigest's input; grows to the longest leaf met. */
let scratch = Buffer.allocUnsafe(4096);
/** The input of nodeHash and pairDigest: 0x01 followed by the two hashes. */
const node = Buffer.alloc(1 + 2 * HASH_BYTES, 1);

/** The largest power of two smaller than n (n ≥ 2): the RFC's k. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[start:end]) for start < end, start aligned as the RFC's recursions keep it. */
export function rangeHash(perfect: PerfectHashes, start: number, end: number): Hash {
  const n = end - start;
  if ((n & (n - 1)) === 0 && start % n === 0) return perfect(Math.log2(n), start / n);
  const k = split(n);
  return nodeHash(rangeHash(perfect, start, start + k), rangeHash(perfect, start + k, end));
}

export function rootHash(perfect: PerfectHashes, size: number): Hash {
  return size === 0 ? EMPTY_ROOT : rangeHash(perfect, 0, size);
}

/** PATH(m, D[n]), RFC 9162 2.1.3.1: the audit path of leaf m in the tree of the first n leaves. */
export function inclusionProof(perfect: PerfectHashes, index: number, size: number): Hash[] {
  const path: Hash[] = [];
  const walk = (m: number, start: number, end: number) => {
    const n = end - start;
    if (n <= 1) return;
    const k = split(n);
    if (m < k) {
      walk(m, start, start + k);
      path.push(rangeHash(perfect, start + k, end));
    } else {
      walk(m - k, start + k, end);
      path.push(rangeHash(perfect, start, start + k));
    }
  };
  walk(index, 0, size);
  return path;
}

/** PROOF(m, D[n]), RFC 9162 2.1.4.1: the consistency proof from the first m leaves to the first n (0 < m ≤ n). */
export function consistencyProof(perfect: PerfectHashes, from: number, size: number): Hash[] {
  const proof: Hash[] = [];
  const sub = (m: number, start: number, end: number, whole: boolean) => {
    const n = end - start;
    if (m === n) {
      if (!whole) proof.push(rangeHash(perfect, start, end));
      return;
    }
    const k = split(n);
    if (m <= k) {
      sub(m, start, start + k, whole);
      proof.push(rangeHash(perfect, start + k, end));
    } else {
      sub(m - k, start + k, end, false);
      proof.push(rangeHash(perfect, start, start + k));
    }
  };
  if (from < size) sub(from, 0, size, true);
  return proof;
}
