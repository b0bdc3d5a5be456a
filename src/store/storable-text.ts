/** PostgreSQL text and jsonb refuse NUL and unpaired surrogates; callers refuse them first, with a field name. */
export function isStorableText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}
