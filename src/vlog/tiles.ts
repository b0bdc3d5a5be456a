import { HASH_BYTES, type Hash, nodeHash, type PerfectHashes, rangeHash } from "./merkle.js";

/**
 * The tree stored as tiles, in the C2SP tlog-tiles layout: a tile at level L holds up to 256 consecutive hashes of
 * perfect subtrees of height 8·L (level 0: leaf hashes; level 1: roots of 256 leaves, …), tile N of level L starting at
 * hash N·256. A full tile never changes. The right edge (each level's partial tile) is the only state an append
 * reads and rewrites; any perfect subtree, and so any root or proof, is hashed from at most one tile per subtree.
 */

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 2 ** TILE_HEIGHT;

/** A tile that became full: stored once, never rewritten. */
export interface FullTile {
  level: number;
  index: number;
  hashes: Buffer;
}

/** Tiles by level and index; undefined for one not held. */
export type TileSource = (level: number, index: number) => Buffer | undefined;

/** Hashes in a tile at level `level` below `size` leaves (the width of that level's partial tile, 0 to 255). */
export function edgeWidth(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level) % TILE_WIDTH;
}

/** The tile that holds hash `position` of a level. */
export function tileOf(position: number): number {
  return Math.floor(position / TILE_WIDTH);
}

/** The tree's right edge: per level, the hashes of its partial tile. Append-only; `full` collects finished tiles. */
export class Edge {
  private constructor(
    public size: number,
    private readonly levels: Hash[][],
  ) {}

  static empty(): Edge {
    return new Edge(0, []);
  }

  /** From `encode`'s bytes: the levels' partial tiles, concatenated; their widths follow from the size. */
  static decode(size: number, bytes: Uint8Array): Edge {
    const levels: Hash[][] = [];
    let offset = 0;
    for (let level = 0; TILE_WIDTH ** level <= size; level++) {
      const hashes: Hash[] = [];
      for (let i = edgeWidth(size, level); i > 0; i--, offset += HASH_BYTES) {
        hashes.push(Buffer.from(bytes.subarray(offset, offset + HASH_BYTES)));
      }
      levels.push(hashes);
    }
    if (offset !== bytes.length)
      throw new Error(`a tree edge of size ${size} holds ${offset} bytes, got ${bytes.length}`);
    return new Edge(size, levels);
  }

  encode(): Buffer {
    return Buffer.concat(this.levels.flat());
  }

  copy(): Edge {
    return new Edge(
      this.size,
      this.levels.map((hashes) => [...hashes]),
    );
  }

  append(leaf: Hash, full: FullTile[]): void {
    this.size++;
    let carry = leaf;
    for (let level = 0; ; level++) {
      const hashes = this.levels[level] ?? [];
      this.levels[level] = hashes;
      hashes.push(carry);
      if (hashes.length < TILE_WIDTH) return;
      full.push({ level, index: tileOf(this.size / TILE_WIDTH ** level) - 1, hashes: Buffer.concat(hashes) });
      carry = perfectOf(hashes, 0, TILE_WIDTH);
      this.levels[level] = [];
    }
  }

  /** The partial tiles as a TileSource: each level's at its index, concatenated once. */
  tiles(): TileSource {
    const bytes = this.levels.map((hashes) => Buffer.concat(hashes));
    return (level, index) => (index === edgeTileIndex(this.size, level) ? bytes[level] : undefined);
  }

  root(): Hash {
    return rangeHash(tileHashes(this.tiles()), 0, this.size);
  }
}

/** The tile a level's hashes below `size` leaves end in: the partial one, which the edge holds. */
export function edgeTileIndex(size: number, level: number): number {
  return tileOf(Math.floor(size / TILE_WIDTH ** level));
}

/** The root of `count` (a power of two) hashes from `offset` of a list. */
function perfectOf(hashes: readonly Hash[], offset: number, count: number): Hash {
  let row = hashes.slice(offset, offset + count);
  while (row.length > 1) {
    const next: Hash[] = [];
    for (let i = 0; i < row.length; i += 2) next.push(nodeHash(row[i] as Hash, row[i + 1] as Hash));
    row = next;
  }
  return row[0] as Hash;
}

/**
 * Perfect subtree hashes read from tiles: height 8·L is one hash of a level-L tile, and a height in between is hashed
 * from the two halves below it, each computed once per reader (a proof's subtrees share their lower nodes).
 */
export function tileHashes(tiles: TileSource): PerfectHashes {
  const memo = new Map<string, Hash>();
  const perfect: PerfectHashes = (height, index) => {
    const rest = height % TILE_HEIGHT;
    if (rest === 0) {
      const level = height / TILE_HEIGHT;
      const tile = tiles(level, tileOf(index));
      const offset = (index % TILE_WIDTH) * HASH_BYTES;
      if (!tile || tile.length < offset + HASH_BYTES) {
        throw new Error(`tile ${level}/${tileOf(index)} lacks hash ${index % TILE_WIDTH}`);
      }
      return tile.subarray(offset, offset + HASH_BYTES) as Hash;
    }
    const key = `${height}/${index}`;
    let hash = memo.get(key);
    if (!hash) {
      hash = nodeHash(perfect(height - 1, 2 * index), perfect(height - 1, 2 * index + 1));
      memo.set(key, hash);
    }
    return hash;
  };
  return perfect;
}

/** The tiles (level, index) a computation over perfect subtree hashes reads, found by running it on zero hashes. */
export function tilesRead(run: (perfect: PerfectHashes) => unknown): { level: number; index: number }[] {
  const seen = new Map<string, { level: number; index: number }>();
  const zero = Buffer.alloc(HASH_BYTES);
  run((height, index) => {
    const level = Math.floor(height / TILE_HEIGHT);
    const tile = tileOf(index * 2 ** (height - level * TILE_HEIGHT));
    seen.set(`${level}/${tile}`, { level, index: tile });
    return zero;
  });
  return [...seen.values()];
}
