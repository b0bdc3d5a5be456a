import { type Logger, pino } from "pino";

export type { Logger };

/** JSON logs on stdout. Secrets and event payloads never reach a log call; the redaction is a second line of defence. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: "audit-trail" },
      // ISO 8601 (UTC), readable without converting epoch milliseconds.
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ["authorization", "*.authorization", "token", "*.token", "password", "*.password"],
        censor: "[redacted]",
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
