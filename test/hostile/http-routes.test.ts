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
import { RawHttp, restBodyCases, restInvalidRequestCases, restPathCases, restQueryCases } from "./http-cases.js";
import {
  auditResourceCases,
  axonizeCases,
  frontierCases,
  planoAuthCases,
  universalControllerCases,
} from "./legacy-cases.js";

// REST and the legacy routes over raw HTTP/1.1, so paths go out exactly as written.
let target: Target;
let run: HostileRun;
let client: RawHttp;

beforeAll(async () => {
  target = await startTarget();
  run = new HostileRun(target);
  client = new RawHttp(target.app.url);
});
afterAll(async () => {
  client?.close();
  await stopTarget(target);
});

test("REST and legacy routes: traversal, encodings, bad bodies and queries, XML bombs and entities are refused", async () => {
  const rest = fc.oneof(
    restPathCases(client, target),
    restQueryCases(client, target),
    restBodyCases(client, target),
    restInvalidRequestCases(client, target),
  );
  const legacy = fc.oneof(
    planoAuthCases(client, target),
    axonizeCases(client, target),
    auditResourceCases(client, target),
    frontierCases(client, target),
    universalControllerCases(client, target),
  );
  await run.fuzz(fc.oneof(rest, legacy), { runs: 4, batch: 20 });
  const baseline = await settledMemoryBytes();

  await run.fuzz(rest, { runs: 60, batch: 30 });
  await run.fuzz(legacy, { runs: 50, batch: 30 });

  client.close();
  await expectMemoryNearBaseline(baseline);
  console.log(run.summary("REST and legacy routes"));
  expect(run.total()).toBeGreaterThan(3000);
}, 180_000);
