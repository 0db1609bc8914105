/** The page a location hash names: `#/`, `#/tasks/<id>`, `#/compare?a=<run>&b=<run>`. */
export type Route =
  | { page: 'list'; query: URLSearchParams }
  | { page: 'task'; id: string }
  | { page: 'compare'; a: string; b: string };

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#/, '').split('?');
  const query = new URLSearchParams(search);
  const task = /^\/tasks\/([a-z0-9]+)$/.exec(path);
  if (task) return { page: 'task', id: task[1]! };
  if (path === '/compare') return { page: 'compare', a: query.get('a') ?? '', b: query.get('b') ?? '' };
  return { page: 'list', query };
}

export const taskHref = (id: string): string => `#/tasks/${id}`;
export const compareHref = (a: string, b: string): string =>
  `#/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
