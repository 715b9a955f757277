// Live happenings inside the server, for the admin API's event stream (and the
// portal that reads it): emergency calls, job progress, phone state, deliveries.
import { EventEmitter } from 'node:events';
import type { Job, Notification, StoredEvent } from './db/repo.js';
import type { EmergencyFacts } from './notify/message.js';

export interface BusEvents {
  emergency: [{ event: StoredEvent; facts: EmergencyFacts }];
  event: [StoredEvent];
  phone: [{ deviceId: string; change: 'status' | 'applied' | 'location' | 'mismatch' | 'disagreement' | 'issued' | 'notice' }];
  job: [Job];
  notification: [Notification];
  change: [{ entity: string; id: string | number | null; action: string }];
}

export class Bus extends EventEmitter<BusEvents> {
  constructor() {
    super();
    // Every open portal holds one listener per kind.
    this.setMaxListeners(0);
  }
}
