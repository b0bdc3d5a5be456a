import { type Logger, pino } from "pino";

export type { Logger };

/**
 * JSON logs on stdout. Secrets and event payloads never reach a log call; the redaction is a second line of defence.
 *
 * Stdout is written asynchronously: lines logged while a write is in flight go out together in the next one, so a
 * busy service makes one write per batch of lines rather than one per call, and a quiet one still writes each line at
 * once. Whatever is buffered is flushed synchronously when the process exits (pino registers that).
 */
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
    (destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: false }),
  );
}
