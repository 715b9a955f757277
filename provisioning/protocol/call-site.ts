// Who placed an emergency or test call, and from where, at call time: the `site`
// member of an emergency-call / test-call event's data. The phone reads it when the
// call is placed (its network and LLDP neighbour then, not when the address was
// last prepared); the server maps `ip` to a location's IP group (its floor or zone)
// and shows it beside the address that was sent.
import { z } from 'zod';

export const callSiteSchema = z.object({
  /** The phone's extension: the user part of its SIP address of record, when it has one. */
  extension: z.string().max(64).nullable(),
  /** The address the phone had on its call interface when the call was placed. */
  ip: z.string().max(64).nullable(),
  interface: z.string().max(32).nullable(),
  /** The switch port the phone is plugged into (LLDP), or null when no neighbour is seen. */
  switch: z
    .object({
      chassisId: z.string().max(128),
      portId: z.string().max(128),
      portDescr: z.string().max(256).nullable(),
      sysName: z.string().max(256).nullable(),
    })
    .nullable(),
});
export type CallSite = z.infer<typeof callSiteSchema>;

/** The site in an event's data, or null when absent or malformed (an older phone's event). */
export function callSiteOf(data: unknown): CallSite | null {
  const r = callSiteSchema.safeParse((data as { site?: unknown } | null)?.site);
  return r.success ? r.data : null;
}
