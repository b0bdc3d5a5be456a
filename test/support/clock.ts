import type { Clock } from "../../src/clock.js";

/** A clock tests move by hand; it starts at the real time. */
export class ManualClock implements Clock {
  private micros = BigInt(Date.now()) * 1000n;

  nowMicros(): bigint {
    return this.micros;
  }

  advanceHours(hours: number): void {
    this.micros += BigInt(Math.round(hours * 3600 * 1e6));
  }
}
