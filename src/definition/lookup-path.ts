/** Reads a dotted path of own properties (`a.b.c`) from plain data; anything else is undefined. */
export function lookupPath(root: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (node, key) =>
        node && typeof node === 'object' && Object.hasOwn(node, key)
          ? (node as Record<string, unknown>)[key]
          : undefined,
      root,
    );
}
