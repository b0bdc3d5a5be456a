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
import {
  connectProtocolCases,
  connectSender,
  framingCases,
  grpcWebSender,
  invalidRequestCases,
  jsonFaultCases,
  malformedMessageCases,
} from "./rpc-cases.js";

// gRPC-web and Connect over fetch (HTTP/1.1 keep-alive), binary and JSON.
let target: Target;
let run: HostileRun;

beforeAll(async () => {
  target = await startTarget();
  run = new HostileRun(target);
});
afterAll(() => stopTarget(target));

test("gRPC-web and Connect: malformed bodies, broken frames, protocol faults and invalid requests are refused", async () => {
  const url = target.app.url;
  const grpcWeb = grpcWebSender(url);
  const binary = connectSender(url, true);
  const json = connectSender(url, false);
  const everything = [
    malformedMessageCases(grpcWeb, target),
    framingCases(grpcWeb, target),
    invalidRequestCases(grpcWeb, target),
    malformedMessageCases(binary, target),
    invalidRequestCases(binary, target),
    connectProtocolCases(url, target),
    jsonFaultCases(json, target),
    invalidRequestCases(json, target),
  ];
  await run.fuzz(fc.oneof(...everything), { runs: 4, batch: 20 });
  const baseline = await settledMemoryBytes();

  await run.fuzz(fc.oneof(malformedMessageCases(grpcWeb, target), framingCases(grpcWeb, target)), {
    runs: 30,
    batch: 30,
  });
  await run.fuzz(invalidRequestCases(grpcWeb, target), { runs: 12, batch: 25 });
  await run.fuzz(fc.oneof(malformedMessageCases(binary, target), connectProtocolCases(url, target)), {
    runs: 30,
    batch: 30,
  });
  await run.fuzz(jsonFaultCases(json, target), { runs: 30, batch: 30 });
  await run.fuzz(fc.oneof(invalidRequestCases(binary, target), invalidRequestCases(json, target)), {
    runs: 16,
    batch: 25,
  });

  await expectMemoryNearBaseline(baseline);
  console.log(run.summary("gRPC-web and Connect"));
  expect(run.total()).toBeGreaterThan(3000);
}, 180_000);
