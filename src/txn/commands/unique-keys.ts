/** Keys of a request without repeats, first occurrence kept: a key repeated in one request is acted on once. */
export function uniqueKeys(keys: readonly Buffer[]): Buffer[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const id = k.toString("latin1");
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
