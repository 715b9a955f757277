// Config sections of the emergency path: `emergency`, `dialPlan` and `sip`.
// agent/config.ts includes them in the agent's schema; every key has a default,
// so a phone with no emergency section still dials 911 (to its registrar when
// no emergency route is configured).
import { z } from 'zod';

const sipUri = z.string().regex(/^sips?:[^\s<>"]+$/, 'must be a SIP URI like sip:192.0.2.10:5060');
const headerName = z.string().regex(/^[A-Za-z0-9!%*_+`'~.-]+$/, 'must be a SIP header name');
// A header value must not smuggle another header or a body in.
const headerValue = z
  .string()
  .max(1024)
  .regex(/^[^\r\n\0]*$/, 'must be one line');
const regexSource = z.string().refine((s) => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}, 'must be a valid regular expression');

export const DEFAULT_EMERGENCY_NUMBERS = [
  { digits: '911', kind: 'emergency' as const, urn: 'urn:service:sos' },
  { digits: '933', kind: 'test' as const },
];

export const emergencySchema = z
  .strictObject({
    /** Emergency and test numbers; their outside-line forms are added from outsideLinePrefix. */
    numbers: z
      .array(
        z.strictObject({
          digits: z.string().regex(/^[0-9]{2,8}$/, 'must be 2-8 digits'),
          kind: z.enum(['emergency', 'test']),
          /** Service URN used when targetForm is 'urn'. */
          urn: z
            .string()
            .regex(/^urn:service:[a-z0-9.-]+$/i, 'must be a service URN like urn:service:sos')
            .optional(),
        }),
      )
      .min(1)
      .default(DEFAULT_EMERGENCY_NUMBERS),
    /** The site's outside-line prefix ("" for none): 9911 and 9933 are emergency calls too. */
    outsideLinePrefix: z
      .string()
      .regex(/^[0-9]{0,3}$/, 'must be 0-3 digits')
      .default('9'),
    /** 'number': sip:911@route; 'urn': <urn:service:sos> sent through the route. */
    targetForm: z.enum(['number', 'urn']).default('number'),
    routes: z.strictObject({ primary: sipUri.optional(), secondary: sipUri.optional(), fallback: sipUri.optional() }).prefault({}),
    /** No provisional response within this long: the next route. */
    failoverMs: z.number().int().min(100).max(60_000).default(2000),
    /** DND, forwarding and call waiting stay off this long after an emergency call; PSAP callbacks are answered first. */
    suppressMinutes: z
      .number()
      .min(0)
      .max(24 * 60)
      .default(30),
    extraHeaders: z.array(z.strictObject({ name: headerName, value: headerValue })).default([]),
    /** Other calls when an emergency call goes out: held (default) or ended. */
    activeCallPolicy: z.enum(['hold', 'end']).default('hold'),
    location: z
      .strictObject({
        /** PIDF-LO basicPolicy retransmission-allowed: a PSAP must pass the location on to responders. */
        retransmissionAllowed: z.boolean().default(true),
        retentionHours: z
          .number()
          .positive()
          .max(24 * 365)
          .optional(),
        /** provided-by (RFC 6881 ED-41): who supplied the location. */
        providerName: z.string().min(1).max(128).default('e911-agent provisioning'),
        providerContact: z.string().max(256).optional(),
        lang: z
          .string()
          .regex(/^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/)
          .default('en'),
      })
      .prefault({}),
  })
  .prefault({});

export const dialPlanSchema = z
  .strictObject({
    /** Operator rules for ordinary numbers: full-match regex and replacement. Never applied to emergency numbers. */
    rules: z.array(z.strictObject({ match: regexSource, replace: z.string().max(64) })).default([]),
    interDigitMs: z.number().int().min(500).max(30_000).default(4000),
  })
  .prefault({});

// ALSA PCM names as `aplay -L` lists them: default, sysdefault:CARD=PCH, plughw:CARD=Audio,DEV=0, ...
const alsaDevice = z.string().regex(/^[A-Za-z0-9_.:,=-]{1,128}$/, 'must be an ALSA device name like default or plughw:CARD=Audio,DEV=0');

/** The sound device calls use. */
export const soundSchema = z
  .union([
    /** No audio hardware: calls carry silence (headless tests and the demo only). */
    z.literal('null'),
    z.strictObject({ capture: alsaDevice.default('default'), playback: alsaDevice.default('default') }),
  ])
  .default({ capture: 'default', playback: 'default' });

export const sipSchema = z
  .strictObject({
    transport: z.enum(['udp', 'tcp', 'tls']).default('udp'),
    /** Address SIP and RTP bind to (default: all). */
    bindAddress: z.string().optional(),
    /** Address advertised in Via/Contact/SDP (NAT, or several interfaces). */
    publicAddress: z.string().optional(),
    port: z.number().int().min(0).max(65_535).default(5060),
    rtpPort: z.number().int().min(0).max(65_535).default(4000),
    /** The phone's own limit for ordinary calls; emergency calls go out beyond it. */
    maxCalls: z.number().int().min(1).max(16).default(4),
    account: z
      .strictObject({
        /** Address of record, e.g. sip:1001@pbx.example */
        uri: sipUri,
        registrar: sipUri.optional(),
        username: z.string().optional(),
        password: z.string().optional(),
        realm: z.string().default('*'),
        regTimeoutSec: z.number().int().min(30).max(86_400).default(300),
      })
      .optional(),
    tls: z
      .strictObject({
        caListFile: z.string().optional(),
        certFile: z.string().optional(),
        privateKeyFile: z.string().optional(),
        verifyServer: z.boolean().default(true),
      })
      .optional(),
    /**
     * ALSA capture and playback devices (default: ALSA's default device), or 'null'.
     * A missing or busy device never stops a call: it goes out with the null device,
     * and the failure is logged and reported (audio-device-failed event).
     */
    sound: soundSchema,
    /** Backend log level 0..6. */
    logLevel: z.number().int().min(0).max(6).default(2),
  })
  .prefault({});

export type EmergencyConfig = z.infer<typeof emergencySchema>;
export type DialPlanSettings = z.infer<typeof dialPlanSchema>;
export type SipConfig = z.infer<typeof sipSchema>;
