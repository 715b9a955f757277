// The network section of the agent's configuration: what to watch, LLDP-MED,
// DHCP hand-over, HELD, and the recommendation schedule.
import { z } from 'zod';

const DEFAULTS = {
  backend: 'netlink' as const,
  interfaces: [] as string[],
  debounceMs: 25,
  lldp: { enabled: true, runDaemon: true, socketPath: '/run/e911-lldpd/lldpd.sock' },
  dhcp: { enabled: true },
  held: { responseTimeMs: 3000, refreshMs: 30 * 60_000 },
  recommendations: { firstCheckMs: 10 * 60_000, checkEveryMs: 5 * 60_000 },
};

export const networkSchema = z
  .strictObject({
    /** netlink: `ip monitor` and the host's /proc and /sys; sim: a simulated network (laptops, CI). */
    backend: z.enum(['netlink', 'sim']).default(DEFAULTS.backend),
    /** Interfaces to watch; empty watches all but loopback. "eth*" matches a prefix. */
    interfaces: z.array(z.string().min(1).max(32)).max(16).default(DEFAULTS.interfaces),
    /** Window that gathers a burst of netlink messages into one snapshot. */
    debounceMs: z.number().int().min(0).max(5000).default(DEFAULTS.debounceMs),
    lldp: z
      .strictObject({
        enabled: z.boolean().default(DEFAULTS.lldp.enabled),
        /** Run our own lldpd (-M 3, own socket); false reads a system lldpd at socketPath. */
        // lldpcli drops to the _lldpd user before connecting: every folder above the
        // socket must be searchable by others (not the 0750 control-socket folder).
        runDaemon: z.boolean().default(DEFAULTS.lldp.runDaemon),
        socketPath: z.string().min(1).default(DEFAULTS.lldp.socketPath),
      })
      .default(DEFAULTS.lldp),
    dhcp: z.strictObject({ enabled: z.boolean().default(DEFAULTS.dhcp.enabled) }).default(DEFAULTS.dhcp),
    held: z
      .strictObject({
        /** The LIS's HELD URL; no URL, no HELD. */
        url: z
          .string()
          .regex(/^https?:\/\/\S+$/, 'must be an http(s) URL')
          .optional(),
        responseTimeMs: z.number().int().min(100).max(30_000).default(DEFAULTS.held.responseTimeMs),
        refreshMs: z.number().int().min(10_000).default(DEFAULTS.held.refreshMs),
      })
      .default(DEFAULTS.held),
    recommendations: z
      .strictObject({
        firstCheckMs: z.number().int().min(0).default(DEFAULTS.recommendations.firstCheckMs),
        checkEveryMs: z.number().int().min(1000).default(DEFAULTS.recommendations.checkEveryMs),
      })
      .default(DEFAULTS.recommendations),
  })
  .default(DEFAULTS);

export type NetworkConfig = z.infer<typeof networkSchema>;
