// The control socket's contract: every command's arguments and answer, one zod schema each,
// beside the MQTT contract's PAYLOADS. The agent's server validates each request against its
// command's args schema (a bad request is answered with code bad-request, the handler never
// runs); e911ctl validates each answer against the command's result schema, so neither end
// casts. An answer with more fields than its schema names (a newer agent) still parses; the
// parsed value keeps the named fields, and `e911ctl --json` prints the answer as the agent sent it.
import { z } from 'zod';
import { addressDocumentSchema, civicAddressSchema, LOCATION_POLICIES } from '../../provisioning/protocol/address.js';
import { CHECK_IDS } from '../diagnostics/types.js';

const none = z.strictObject({});
const which = z.enum(['network', 'provisioned']);
const str = z.record(z.string(), z.string());

// The answers' schemas are built on first use (z.lazy): only e911ctl parses them, and the agent
// would otherwise build them all at start (docs/performance.md, "Start to ready").
const media = () =>
  z.object({
    rtpSent: z.number(),
    rtpReceived: z.number(),
    rtpLost: z.number(),
    rtpLostByPeer: z.number(),
    jitterMs: z.number(),
    jitterMaxMs: z.number(),
  });

const callSummary = z.lazy(() =>
  z.object({
    callRef: z.string(),
    kind: z.enum(['emergency', 'test']),
    dialed: z.string(),
    state: z.string(),
    startedAt: z.string(),
    route: z.string().nullable(),
    media: media().nullable(),
  }),
);

const dialOutcome = z.lazy(() =>
  z.union([
    z.object({ kind: z.literal('pending'), collected: z.string() }),
    z.object({
      kind: z.enum(['emergency', 'test']),
      placed: z.literal(true),
      callRef: z.string(),
      dialed: z.string(),
      route: z.string(),
      target: z.string(),
      addressMissing: z.boolean(),
    }),
    z.object({ kind: z.enum(['emergency', 'test']), placed: z.literal(false), callRef: z.string(), dialed: z.string(), error: z.string() }),
    z.object({ kind: z.literal('ordinary'), placed: z.boolean(), dialed: z.string(), target: z.string(), reason: z.string().optional() }),
    z.object({ kind: z.literal('invalid'), dialed: z.string(), reason: z.string() }),
  ]),
);

export const diagnosticsReportSchema = z.lazy(() =>
  z.object({
    v: z.literal(1),
    id: z.string(),
    trigger: z.enum(['keypad', 'cli', 'server']),
    startedAt: z.string(),
    finishedAt: z.string(),
    overall: z.enum(['pass', 'warn', 'fail']),
    checks: z.array(
      z.object({
        id: z.enum(CHECK_IDS),
        title: z.string(),
        status: z.enum(['pass', 'warn', 'fail', 'skip']),
        detail: z.string(),
        remedy: z.string().optional(),
        data: z.record(z.string(), z.unknown()).optional(),
      }),
    ),
    address: z.object({ version: z.number(), lines: z.array(z.string()), callback: z.string(), displayName: z.string() }).nullable(),
  }),
);

const geo = () => z.object({ latitude: z.number(), longitude: z.number(), altitude: z.number().nullable() });
const candidate = () =>
  z.object({
    source: z.string(),
    method: z.string(),
    kind: z.enum(['civic', 'geodetic']),
    civic: civicAddressSchema.optional(),
    geo: geo().optional(),
    dispatchable: z.boolean(),
    origin: str,
    locationCode: z.string().optional(),
  });

export const locationListSchema = z.lazy(() =>
  z.object({
    status: z.string(),
    reason: z.string(),
    assigned: z.object({ id: z.string(), code: z.string(), name: z.string() }).nullable(),
    best: candidate().nullable(),
    choices: z.array(
      z.object({
        id: z.string(),
        code: z.string(),
        name: z.string(),
        lines: z.array(z.string()),
        matches: z.boolean(),
        assigned: z.boolean(),
      }),
    ),
    selected: z.object({ locationId: z.string(), confirmed: z.boolean(), at: z.string() }).nullable(),
    lastCheckAt: z.string().nullable(),
    candidates: z.array(candidate().extend({ rank: z.number(), ageMs: z.number() })),
    elin: z.string().nullable(),
    policy: z.enum(LOCATION_POLICIES),
    disagreement: z
      .object({
        fields: z.array(z.string()),
        policy: z.enum(LOCATION_POLICIES),
        chosen: which.nullable(),
        pick: which.nullable(),
        network: z.object({ source: z.string(), method: z.string(), civic: str, origin: str }),
        provisioned: z.object({ civic: str, locationCode: z.string().nullable() }),
        since: z.string(),
      })
      .nullable(),
  }),
);
export type LocationListAnswer = z.infer<typeof locationListSchema>;

const COMMANDS = {
  /** Link state, outbox backlog, store health, handset: a free-form status tree. */
  status: { args: none, result: z.lazy(() => z.record(z.string(), z.unknown())) },
  address: {
    args: none,
    result: z.lazy(() =>
      z
        .object({ version: z.number(), hash: z.string(), appliedAt: z.string(), receivedAt: z.string(), doc: addressDocumentSchema })
        .nullable(),
    ),
  },
  pidf: { args: none, result: z.lazy(() => z.object({ pidf: z.string().nullable(), addressMissing: z.boolean() })) },
  dial: { args: z.strictObject({ digits: z.string().min(1).max(256) }), result: dialOutcome },
  hangup: { args: none, result: z.lazy(() => z.object({ ended: z.number() })) },
  calls: { args: none, result: z.lazy(() => z.array(callSummary)) },
  diag: {
    args: z.strictObject({ noCall: z.boolean().optional(), keepCall: z.boolean().optional(), last: z.boolean().optional() }),
    result: z.lazy(() => diagnosticsReportSchema.nullable()),
  },
  location: { args: none, result: locationListSchema },
  'location-select': {
    args: z.strictObject({ id: z.string().min(1).max(128) }),
    result: z.lazy(() => z.object({ locationId: z.string(), confirmed: z.boolean() })),
  },
  'location-use': {
    args: z.strictObject({ which }),
    result: z.lazy(() => z.object({ chosen: which.nullable(), pick: which.nullable(), policy: z.enum(LOCATION_POLICIES) })),
  },
} as const;

export type ControlCommand = keyof typeof COMMANDS;
type ArgsMap = { [C in ControlCommand]: z.output<(typeof COMMANDS)[C]['args']> };
type ResultMap = { [C in ControlCommand]: z.output<(typeof COMMANDS)[C]['result']> };
export type ControlArgs<C extends ControlCommand> = ArgsMap[C];
export type ControlResult<C extends ControlCommand> = ResultMap[C];

/**
 * The same map, typed as a mapped type over the commands: indexing it with a generic command
 * gives that command's schemas (the correlated-union pattern), so the server and the client
 * stay generic without a cast.
 */
export const CONTROL_COMMANDS: { readonly [C in ControlCommand]: { args: z.ZodType<ArgsMap[C]>; result: z.ZodType<ResultMap[C]> } } =
  COMMANDS;

export function isControlCommand(cmd: unknown): cmd is ControlCommand {
  return typeof cmd === 'string' && Object.hasOwn(CONTROL_COMMANDS, cmd);
}

/** What the agent answers: the command's result, or an error with a code (usage, bad-request, unknown-command, ...). */
export type ControlResponse<C extends ControlCommand> = { ok: true; result: ControlResult<C> } | ControlFailure;
export interface ControlFailure {
  ok: false;
  error: string;
  code?: string | undefined;
}

/** The request line: a command and its arguments (none: {}). */
export const controlRequestSchema = z.strictObject({ cmd: z.string().max(64), args: z.unknown().optional() });

/** The answer schema of one command, for the client. */
export function controlResponseSchema<C extends ControlCommand>(cmd: C): z.ZodType<ControlResponse<C>> {
  const result: z.ZodType<ControlResult<C>> = CONTROL_COMMANDS[cmd].result;
  return z.union([
    z.strictObject({ ok: z.literal(true), result }),
    z.strictObject({ ok: z.literal(false), error: z.string(), code: z.string().optional() }),
  ]);
}

/** A zod error as one line: "digits: Too small ..., which: Invalid option ...". */
export function issuesLine(error: z.ZodError, under?: string): string {
  return error.issues
    .map((i) => {
      const at = [...(under ? [under] : []), ...i.path.map(String)].join('.');
      return `${at ? `${at}: ` : ''}${i.message}`;
    })
    .join('; ');
}
