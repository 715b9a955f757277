// Reading parts of the agent's status answer (a free-form tree) in tests and benches: checked by
// a schema of the part the caller needs, so a renamed field fails loudly instead of reading undefined.
import { z } from 'zod';
import type { ControlResponse } from '../../agent/control/commands.js';

export function statusPart<T>(res: ControlResponse<'status'>, schema: z.ZodType<T>): T {
  if (!res.ok) throw new Error(`status failed: ${res.error}`);
  return schema.parse(res.result);
}

export const storeWrites = (res: ControlResponse<'status'>): number =>
  statusPart(res, z.object({ store: z.object({ writes: z.number() }) })).store.writes;
