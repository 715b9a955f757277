// PLACEHOLDER: being written now; replaced before this lands.
import type { RouteProps } from '../app.js';
import { Page } from '../ui.js';

export function BulkPage(_: RouteProps) {
  return <Page title="BulkPage">{null}</Page>;
}
