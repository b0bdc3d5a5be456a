import { afterAll, beforeAll } from "vitest";
import { startTestApp, type TestApp, type TestAppOptions } from "./app.js";
import { provisionTenant, type TenantTokens } from "./clients.js";

/** A running service and the tokens of each tenant provisioned on it, by tenant id. */
export type AppFixture<Tenant extends string> = { readonly app: TestApp } & { readonly [T in Tenant]: TenantTokens };

/**
 * The real service (startTestApp) with an API key per role in each of `tenants` (provisionTenant), started before the
 * tests of the enclosing file or describe block and closed after them. Hooks registered after this call run after the
 * service has started and, when they clean up, before it is closed. The fields are there once the hooks have run:
 * tests and hooks read them, module-level code cannot.
 */
export function appFixture<const Tenant extends string = never>(
  options: TestAppOptions & { tenants?: readonly Tenant[] } = {},
): AppFixture<Tenant> {
  const { tenants = [], ...start } = options;
  const values = new Map<string, TestApp | TenantTokens>();
  const fixture = {};
  for (const name of ["app", ...tenants]) {
    Object.defineProperty(fixture, name, {
      enumerable: true,
      get() {
        const value = values.get(name);
        if (value === undefined) throw new Error(`appFixture: "${name}" is read before the fixture's beforeAll ran`);
        return value;
      },
    });
  }
  beforeAll(async () => {
    const app = await startTestApp(start);
    values.set("app", app);
    for (const tenant of tenants) values.set(tenant, await provisionTenant(app, tenant));
  });
  afterAll(async () => {
    await (values.get("app") as TestApp | undefined)?.close();
  });
  return fixture as AppFixture<Tenant>;
}
