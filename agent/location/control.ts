// The location commands of the control socket (e911ctl location ...), registered
// by the composition root: list, select (recommendations), use (a disagreement
// under the ask-user policy).
import type { ControlServer } from '../control/control-server.js';
import { ControlError } from '../errors.js';
import type { LocationService } from './service.js';

export function registerLocationControl(control: Pick<ControlServer, 'register'>, service: () => LocationService): void {
  control.register('location', () => service().list());
  control.register('location-use', (args) => {
    const which = args.which;
    if (which !== 'network' && which !== 'provisioned') throw new ControlError('usage', 'location use needs "network" or "provisioned"');
    const d = service().pick(which);
    return { chosen: d.chosen, pick: d.pick, policy: d.policy };
  });
  control.register('location-select', (args) => {
    const id = typeof args.id === 'string' ? args.id : '';
    if (!id) throw new ControlError('usage', 'location select needs a location id, code, or "current"');
    return service().select(id);
  });
}
