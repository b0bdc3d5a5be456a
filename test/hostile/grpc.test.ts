import fc from "fast-check";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  expectMemoryNearBaseline,
  HostileRun,
  settledMemoryBytes,
  startTarget,
  stopTarget,
  type Target,
} from "./harness.js";
import { framingCases, grpcSender, invalidRequestCases, malformedMessageCases } from "./rpc-cases.js";
import { H2Client } from "./wire.js";

// Raw HTTP/2, so frames can be cut, mislabelled and misdeclared in ways no gRPC library would send.
let target: Target;
let run: HostileRun;
let h2: H2Client;

beforeAll(async () => {
  target = await startTarget();
  run = new HostileRun(target);
  h2 = new H2Client(target.app.url, 4);
});
afterAll(async () => {
  h2?.close();
  await stopTarget(target);
});

test("gRPC: malformed messages, broken frames and invalid requests are refused, and nothing else changes", async () => {
  const sender = grpcSender(h2);
  // A first small round warms caches and compiled code, so the baseline is the service at rest, not at start-up.
  await run.fuzz(fc.oneof(malformedMessageCases(sender, target), framingCases(sender, target)), { runs: 4, batch: 20 });
  const baseline = await settledMemoryBytes();

  await run.fuzz(malformedMessageCases(sender, target), { runs: 60, batch: 40 });
  await run.fuzz(framingCases(sender, target), { runs: 20, batch: 30 });
  await run.fuzz(invalidRequestCases(sender, target), { runs: 24, batch: 25 });

  h2.close();
  await expectMemoryNearBaseline(baseline);
  console.log(run.summary("gRPC"));
  expect(run.total()).toBeGreaterThan(3000);
}, 180_000);
