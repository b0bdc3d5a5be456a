import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // expect.poll waits for something to happen (a page updating, a stream reporting): its bound is for what never
    // happens, and the 1 s default fails on a busy machine without anything being wrong.
    expect: { poll: { timeout: 15_000 } },
    pool: "forks",
    // Two cores: more workers only contend with PostgreSQL for CPU.
    // --expose-gc: the hostile-input suite checks that memory returns to its baseline after a forced collection.
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ["--expose-gc"] } },
  },
});
