import { randomUUID } from "node:crypto";

/**
 * RFC 9562 UUIDv7: time-ordered, so server-assigned ids sort roughly by arrival. Built on randomUUID(), whose random
 * bits come from a pooled buffer (randomBytes(16) per id costs a system call): the v4 layout already has the variant
 * bits of a v7, so only the 48-bit timestamp and the version nibble are replaced.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  // random: xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx; keep everything after the version nibble.
  return timePrefix(nowMs) + randomUUID().slice(15);
}

/** `tttttttt-tttt-7`, kept for the last millisecond asked: the ids of one write share it. */
let lastPrefix = { ms: -1, prefix: "" };

function timePrefix(ms: number): string {
  if (lastPrefix.ms !== ms) {
    const time = ms.toString(16).padStart(12, "0");
    lastPrefix = { ms, prefix: `${time.slice(0, 8)}-${time.slice(8, 12)}-7` };
  }
  return lastPrefix.prefix;
}
