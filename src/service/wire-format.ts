/** Protobuf wire types, as the hand-made reader and writer of AuditEvent messages use them. */
export const VARINT = 0;
export const BIT64 = 1;
export const LEN = 2;

/** google.protobuf.FeatureSet.FieldPresence.IMPLICIT: a proto3 scalar, written only when not its zero value. */
export const IMPLICIT_PRESENCE = 2;
