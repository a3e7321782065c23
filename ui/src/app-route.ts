/** The page's views, named by the location hash (ids only: the key is never in a URL). */

/** Views by location hash: `#/`, `#/workflows/<id>`, `#/executions/<id>` (ids only; the key is never in a URL). */
export type Route = { view: 'list' } | { view: 'workflow'; id: string } | { view: 'execution'; id: string };

const UUID = '[0-9a-fA-F-]{36}';

/** The view a location hash names; anything else is the list. */
export function parseRoute(hash: string): Route {
  const workflow = new RegExp(`^#/workflows/(${UUID})$`).exec(hash);
  if (workflow) return { view: 'workflow', id: workflow[1]! };
  const execution = new RegExp(`^#/executions/(${UUID})$`).exec(hash);
  if (execution) return { view: 'execution', id: execution[1]! };
  return { view: 'list' };
}
