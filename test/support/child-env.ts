/**
 * What a child process (the service, the admin CLI, a README command) inherits from the developer's environment: only
 * what finding programs and temporary files needs. The service's own settings (TLS_*, CORS_ORIGINS, DATABASE_URL,
 * AUDIT_ADMIN_TOKEN, …) set in a developer's shell would otherwise change what a test runs against; each test passes
 * the ones it means.
 */
const INHERITED = ["PATH", "HOME", "TMPDIR", "TEMP", "TMP", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "USER"];

export function childEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    INHERITED.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]]])),
  );
  return { ...inherited, ...env };
}
