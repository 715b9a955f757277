// The data of the phone's retained location report (topic kind `location`): what the
// agent's location service knows, for the server to store and the portal to show.
// Inner objects are z.object: a key a newer phone adds there is accepted and dropped; the top level is strict.
import { z } from 'zod';
import { LOCATION_POLICIES } from './address.js';

export const LOCATION_SOURCES = ['user', 'provisioned', 'lldp-med', 'dhcp', 'held'] as const;
export type LocationSourceName = (typeof LOCATION_SOURCES)[number];

const geodeticSchema = z.object({
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  altitude: z.number().nullable(),
  radius: z.number().nonnegative().nullable(),
  datum: z.string().max(64),
});

/** One ranked location, as summarised for the report. */
export const reportedLocationSchema = z.object({
  source: z.enum(LOCATION_SOURCES),
  method: z.string().max(64),
  kind: z.enum(['civic', 'geodetic']),
  civic: z.record(z.string().max(32), z.string().max(256)).optional(),
  geo: geodeticSchema.optional(),
  dispatchable: z.boolean(),
  origin: z.record(z.string().max(64), z.string().max(512)),
  locationCode: z.string().max(64).optional(),
});

const gatewaySchema = z.object({ address: z.string().max(64), iface: z.string().max(64), mac: z.string().max(64).nullable() });

const networkSchema = z.object({
  interfaces: z.array(z.object({ name: z.string(), mac: z.string().nullable(), up: z.boolean(), addresses: z.array(z.string()) })).max(64),
  gateway4: gatewaySchema.nullable(),
  gateway6: gatewaySchema.nullable(),
  dns: z.array(z.string()).max(32),
});

const lldpSchema = z.object({
  iface: z.string(),
  chassisId: z.string(),
  portId: z.string(),
  portDescr: z.string().nullable(),
  sysName: z.string().nullable(),
  elin: z.string().optional(),
  voiceVlan: z
    .object({ vlan: z.number().int().nullable(), pcp: z.number().int().nullable(), dscp: z.number().int().nullable() })
    .optional(),
});

export const locationReportDataSchema = z.strictObject({
  best: reportedLocationSchema.nullable(),
  candidates: z.array(reportedLocationSchema).max(64),
  elin: z.string().max(32).nullable(),
  network: networkSchema.nullable(),
  lldp: z.array(lldpSchema).max(16),
  recommendation: z
    .object({
      status: z.string().max(32),
      assignedLocationId: z.string().max(64).nullable(),
      matchingLocationIds: z.array(z.string().max(64)).max(1000),
    })
    .nullable(),
  disagreement: z
    .object({
      fields: z.array(z.string().max(32)).max(16),
      policy: z.enum(LOCATION_POLICIES),
      chosen: z.enum(['network', 'provisioned']).nullable(),
      network: z.enum(['lldp-med', 'dhcp']),
    })
    .nullable(),
});

export type ReportedLocation = z.infer<typeof reportedLocationSchema>;
export type LocationReportData = z.infer<typeof locationReportDataSchema>;
