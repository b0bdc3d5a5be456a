import { Code } from "@connectrpc/connect";
import { domainError, Reason } from "../errors.js";

/** Request bodies made of length-prefixed envelopes: gRPC, gRPC-web and Connect streaming. */
const ENVELOPED = /^application\/(?:grpc|connect\+)/i;

export function isEnveloped(contentType: string | undefined): boolean {
  return ENVELOPED.test(contentType ?? "");
}

/** INVALID_ARGUMENT for a request envelope whose flags are neither 0 (plain) nor 1 (compressed). */
export function envelopeFlagsError(flags: number) {
  return domainError(
    Code.InvalidArgument,
    Reason.MalformedMessage,
    `envelope flags 0x${flags.toString(16).padStart(2, "0")} are not allowed in a request: 0 (plain) or 1 (compressed)`,
  );
}

/**
 * Passes an enveloped request body through unchanged, refusing any envelope whose flags are not 0 (plain) or 1
 * (compressed). connect-es reads only the compression bit, so a client could otherwise send end-of-stream or trailer
 * flags, or reserved bits, and have the message taken as an ordinary one.
 */
export async function* checkEnvelopeFlags(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  // Bytes of the current envelope still to pass: its header (5) while reading one, then its payload.
  let headerRead = 0;
  let lengthBytes = 0;
  let payloadLeft = 0;
  for await (const chunk of body) {
    let pos = 0;
    while (pos < chunk.length) {
      if (payloadLeft > 0) {
        const n = Math.min(payloadLeft, chunk.length - pos);
        payloadLeft -= n;
        pos += n;
        continue;
      }
      const byte = chunk[pos] as number;
      pos += 1;
      if (headerRead === 0 && byte > 1) throw envelopeFlagsError(byte);
      if (headerRead > 0) lengthBytes = lengthBytes * 256 + byte;
      headerRead += 1;
      if (headerRead === 5) {
        payloadLeft = lengthBytes;
        headerRead = 0;
        lengthBytes = 0;
      }
    }
    yield chunk;
  }
}
