import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { type Config, ConfigError, loadConfig } from "../../src/config.js";

// The README's configuration table is the promise an operator reads: for each variable its default, and the values
// allowed; "anything wrong stops start-up with one line on stderr that names the variable, its value … and what is
// allowed". test/core/config.test.ts checks the refusal of chosen values and that main.ts prints the one line; this
// file holds every row of the table to it: the range a row states is the range loadConfig enforces, at both ends, the
// documented default is the one taken, and a value of the wrong kind is refused by name for every variable.

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Row {
  variables: string[];
  default: string;
  meaning: string;
}

async function configurationTable(): Promise<Row[]> {
  const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf("## Configuration");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  const rows: Row[] = [];
  for (const m of section.matchAll(/^\| (`[A-Z0-9_]+`(?:, `[A-Z0-9_]+`)*)(?:, …)? \| ([^|]+) \| (.+) \|$/gm)) {
    rows.push({
      variables: (m[1] ?? "").split(", ").map((v) => v.slice(1, -1)),
      default: (m[2] ?? "").trim(),
      meaning: m[3] ?? "",
    });
  }
  return rows;
}

/** What loadConfig throws for `variable`=`value` alone, if anything. */
function refusal(variable: string, value: string): unknown {
  try {
    loadConfig({ [variable]: value });
    return undefined;
  } catch (error) {
    return error;
  }
}

/** What loadConfig says of `value` for `variable`: undefined when it takes it, else its one line, naming it. */
function verdict(variable: string, value: string): string | undefined {
  const error = refusal(variable, value);
  if (error === undefined) return undefined;
  {
    expect(error, `${variable}=${value}`).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    const line = (error as ConfigError).message;
    expect(line).not.toContain("\n");
    return line;
  }
}

/** The config field a variable sets, by the naming the code follows (DATABASE_POOL_SIZE → databasePoolSize). */
function field(variable: string): keyof Config | undefined {
  const name = variable.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return name in loadConfig({}) ? (name as keyof Config) : undefined;
}

const rows = await configurationTable();
const variables = rows.flatMap((r) => r.variables.map((variable) => ({ variable, row: r })));
// Whole-number settings, found by asking loadConfig (its refusal states the range it enforces).
const numeric = variables
  .map(({ variable, row }) => {
    const error = refusal(variable, "lots");
    const range = /must be a whole number from (\d+) to (\d+)/.exec(error instanceof ConfigError ? error.message : "");
    return range ? { variable, row, min: Number(range[1]), max: Number(range[2]) } : undefined;
  })
  .filter((n) => n !== undefined);

test("the table is found, and holds the whole-number settings", () => {
  expect(rows.length).toBeGreaterThan(25);
  expect(numeric.length).toBeGreaterThan(20);
});

describe.each(numeric)("$variable", ({ variable, row, min, max }) => {
  test("the README states the range loadConfig enforces", () => {
    const stated = [...row.meaning.matchAll(/(\d+)–(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(stated, `README row of ${variable}: ${row.meaning}`).toContainEqual([min, max]);
  });

  test("takes both ends and refuses one past each, naming variable, value and range", () => {
    expect(verdict(variable, String(min))).toBeUndefined();
    expect(verdict(variable, String(max))).toBeUndefined();
    const allowed = `must be a whole number from ${min} to ${max}`;
    expect(verdict(variable, String(max + 1))).toBe(`${variable}="${max + 1}": ${allowed}`);
    expect(verdict(variable, String(min - 1))).toBe(`${variable}="${min - 1}": ${allowed}`);
    expect(verdict(variable, "1.5")).toBe(`${variable}="1.5": ${allowed}`);
  });

  test("takes the documented default when unset or empty", () => {
    const key = field(variable);
    const documented = /^`(\d+)`$/.exec(row.default)?.[1];
    // METRICS_PORT's default is "unset": it has no number to compare.
    if (!key || documented === undefined) {
      expect(row.default).toBe("unset");
      return;
    }
    expect(loadConfig({})[key]).toBe(Number(documented));
    expect(loadConfig({ [variable]: "" })[key]).toBe(Number(documented));
  });
});

test("every true/false setting takes true, 1, false and 0, and refuses anything else by name", () => {
  const booleans = variables.filter(({ row }) => row.meaning.includes("`true`/`1` or `false`/`0`"));
  expect(booleans.map((b) => b.variable)).toEqual(
    expect.arrayContaining(["REQUIRE_LEAST_PRIVILEGE", "GRPC_FAST_PATH"]),
  );
  for (const { variable, row } of booleans) {
    const key = field(variable) as keyof Config;
    expect(loadConfig({})[key], variable).toBe(row.default === "`true`");
    for (const [value, expected] of [
      ["true", true],
      ["1", true],
      ["false", false],
      ["0", false],
    ] as const) {
      expect(loadConfig({ [variable]: value })[key], `${variable}=${value}`).toBe(expected);
    }
    expect(verdict(variable, "yes")).toBe(`${variable}="yes": must be true or false (or 1 or 0)`);
  }
});

test("LOG_LEVEL takes each level the README lists, and refuses others listing them", () => {
  const row = rows.find((r) => r.variables.includes("LOG_LEVEL"));
  const levels = [...(row?.meaning ?? "").matchAll(/`([a-z]+)`/g)].map((m) => m[1] as string);
  expect(levels).toEqual(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
  for (const level of levels) expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level);
  expect(verdict("LOG_LEVEL", "INFO")).toBe(`LOG_LEVEL="INFO": must be one of ${levels.join(", ")}`);
});

test("HOST takes an IP address of either family or a host name, and refuses anything else", () => {
  for (const host of ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "audit-1.internal.example.com"]) {
    expect(verdict("HOST", host), host).toBeUndefined();
  }
  for (const host of ["http://localhost", "-bad.example.com", "a_b", "10.0.0.1:8080"]) {
    expect(verdict("HOST", host), host).toMatch(/^HOST="[^"]+": must be an IP address .* or a host name$/);
  }
});

test("CORS_ORIGINS takes *, and a list of origins, and refuses anything with a path", () => {
  expect(loadConfig({ CORS_ORIGINS: "*" }).corsOrigins).toEqual(["*"]);
  expect(loadConfig({ CORS_ORIGINS: "https://a.example.com, http://localhost:5173" }).corsOrigins).toEqual([
    "https://a.example.com",
    "http://localhost:5173",
  ]);
  expect(verdict("CORS_ORIGINS", "https://a.example.com/app")).toContain(
    '"https://a.example.com/app" is not an origin',
  );
});
