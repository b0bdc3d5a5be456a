/** PostgreSQL text and jsonb refuse NUL and unpaired surrogates: whether a string can be stored as it is. */
export function isStorableText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}
