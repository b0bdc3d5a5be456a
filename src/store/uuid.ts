import { randomUUID } from "node:crypto";

/**
 * RFC 9562 UUIDv7: time-ordered, so server-assigned ids sort roughly by arrival. Built on randomUUID(), whose random
 * bits come from a pooled buffer (randomBytes(16) per id costs a system call): the v4 layout already has the variant
 * bits of a v7, so only the 48-bit timestamp and the version nibble are replaced.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const random = randomUUID();
  const time = nowMs.toString(16).padStart(12, "0");
  // random: xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx; keep everything after the version nibble.
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15)}`;
}
