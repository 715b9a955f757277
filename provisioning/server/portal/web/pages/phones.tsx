// PLACEHOLDER: being written now; replaced before this lands.
import type { RouteProps } from '../app.js';
import { Page } from '../ui.js';

export function PhonesPage(_: RouteProps) {
  return <Page title="PhonesPage">{null}</Page>;
}
