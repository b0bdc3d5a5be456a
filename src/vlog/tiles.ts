import { HASH_BYTES, type Hash, leafDigest, nodeHash, type PerfectHashes, pairDigest, rangeHash } from "./merkle.js";

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

/**
 * The tree's right edge: per level, the hashes of its partial tile, in a tile-sized buffer each (how many of them are
 * set follows from the size). Append-only; `full` collects finished tiles.
 */
export class Edge {
  private constructor(
    public size: number,
    private readonly levels: Buffer[],
  ) {}

  static empty(): Edge {
    return new Edge(0, []);
  }

  /** From `encode`'s bytes: the levels' partial tiles, concatenated; their widths follow from the size. */
  static decode(size: number, bytes: Uint8Array): Edge {
    const levels: Buffer[] = [];
    let offset = 0;
    for (let level = 0; TILE_WIDTH ** level <= size; level++) {
      const length = edgeWidth(size, level) * HASH_BYTES;
      const tile = Buffer.alloc(TILE_BYTES);
      tile.set(bytes.subarray(offset, offset + length));
      offset += length;
      levels.push(tile);
    }
    if (offset !== bytes.length)
      throw new Error(`a tree edge of size ${size} holds ${offset} bytes, got ${bytes.length}`);
    return new Edge(size, levels);
  }

  encode(): Buffer {
    return Buffer.concat(this.levels.map((tile, level) => this.partial(tile, level)));
  }

  copy(): Edge {
    return new Edge(
      this.size,
      this.levels.map((tile, level) => {
        const copy = Buffer.allocUnsafe(TILE_BYTES);
        copy.set(this.partial(tile, level));
        return copy;
      }),
    );
  }

  /** Appends the leaf of `data` (leafDigest's input): its hash, and the perfect subtrees it completes. */
  appendLeaf(data: Uint8Array | string, full: FullTile[]): void {
    let carry = leafDigest(data);
    const before = this.size++;
    for (let level = 0; ; level++) {
      let tile = this.levels[level];
      if (tile === undefined) {
        tile = Buffer.alloc(TILE_BYTES);
        this.levels[level] = tile;
      }
      const width = edgeWidth(before, level);
      tile.write(carry, width * HASH_BYTES, "binary");
      if (width + 1 < TILE_WIDTH) return;
      full.push({ level, index: tileOf(before / TILE_WIDTH ** level), hashes: Buffer.from(tile) });
      // The tile's root; the buffer is overwritten from its start by the level's next hashes.
      carry = tileRoot(tile);
    }
  }

  /** The partial tiles as a TileSource: each level's at its index. */
  tiles(): TileSource {
    const bytes = this.levels.map((tile, level) => Buffer.from(this.partial(tile, level)));
    return (level, index) => (index === edgeTileIndex(this.size, level) ? bytes[level] : undefined);
  }

  root(): Hash {
    return rangeHash(tileHashes(this.tiles()), 0, this.size);
  }

  private partial(tile: Buffer, level: number): Buffer {
    return tile.subarray(0, edgeWidth(this.size, level) * HASH_BYTES);
  }
}

const TILE_BYTES = TILE_WIDTH * HASH_BYTES;

/** The tile a level's hashes below `size` leaves end in: the partial one, which the edge holds. */
export function edgeTileIndex(size: number, level: number): number {
  return tileOf(Math.floor(size / TILE_WIDTH ** level));
}

/**
 * The root of a full tile's 256 hashes, hashed in place row by row: each row's pairs lie side by side, and node i of
 * the next row goes where pair i/2 of this one was read.
 */
function tileRoot(tile: Buffer): string {
  let digest = "";
  for (let width = TILE_WIDTH / 2; width >= 1; width /= 2) {
    for (let i = 0; i < width; i++) {
      digest = pairDigest(tile.subarray(2 * i * HASH_BYTES, 2 * (i + 1) * HASH_BYTES));
      tile.write(digest, i * HASH_BYTES, "binary");
    }
  }
  return digest;
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
