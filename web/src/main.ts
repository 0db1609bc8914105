import 'uplot/dist/uPlot.min.css';
import './style.css';
import { comparePage } from './compare-page.ts';
import { parseRoute } from './router.ts';
import { taskListPage } from './task-list-page.ts';
import { taskPage } from './task-page.ts';

const root = document.getElementById('app')!;
let dispose: () => void = () => undefined;

function show(): void {
  dispose();
  const route = parseRoute(location.hash);
  if (route.page === 'task') dispose = taskPage(root, route.id);
  else if (route.page === 'compare') dispose = comparePage(root, route.a, route.b);
  else dispose = taskListPage(root, route.query);
  performance.mark('page-shown');
}

window.addEventListener('hashchange', show);
show();
