import type { Clock } from "../../src/clock.js";

/** The system clock shifted by an offset a test can move, e.g. to let published events expire. */
export class ShiftedClock implements Clock {
  private offsetMicros = 0n;

  nowMicros(): bigint {
    return BigInt(Date.now()) * 1000n + this.offsetMicros;
  }

  advanceMinutes(minutes: number): void {
    this.offsetMicros += BigInt(minutes) * 60_000_000n;
  }
}
