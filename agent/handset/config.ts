// Config sections of the handset and diagnostics: `handset` and `diagnostics`.
// agent/config.ts includes them; every key has a default.
import { z } from 'zod';

export const handsetSchema = z
  .strictObject({
    /** none: no keypad or display; serial: the phone's MCU (or a socat pty for the simulator); console: this terminal. */
    backend: z.enum(['none', 'serial', 'console']).default('none'),
    /** The MCU's serial device (docs/mcu-protocol.md). */
    path: z.string().min(1).default('/dev/ttyS1'),
    baudRate: z.number().int().positive().default(115200),
  })
  .prefault({});

export const diagnosticsSchema = z
  .strictObject({
    /** An address applied longer ago than this is a warning: confirm it on site. */
    addressMaxAgeDays: z.number().int().min(1).default(365),
    /** More queued events than this, while online, is a warning. */
    outboxWarnAbove: z.number().int().min(0).default(100),
    /** How long the test call may take to be answered. */
    testCallTimeoutMs: z.number().int().min(1000).max(120_000).default(15_000),
    optionsTimeoutMs: z.number().int().min(100).max(30_000).default(2000),
    /** Delay before the system inventory is gathered (off the start-up path). */
    inventoryDelayMs: z.number().int().min(0).default(5000),
  })
  .prefault({});

export type HandsetConfig = z.infer<typeof handsetSchema>;
export type DiagnosticsConfig = z.infer<typeof diagnosticsSchema>;
