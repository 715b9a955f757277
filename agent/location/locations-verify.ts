// The heavy part of a 'locations/set' push: size bound, JSON, schema, Ed25519
// signature over the canonical form, device and version checks, and the text
// the book stores, cut into parts. A 2 MiB push costs about 0.4 s of CPU on
// x86-64 (several on armv7): the agent runs this in a worker thread
// (locations-worker.ts) so keypad digits never wait behind it. Pure: no I/O,
// no state; the same function runs inline in unit tests.
import { createHash, verify, type KeyObject } from 'node:crypto';
import { decodePayload, type RejectCode } from '../../provisioning/protocol/messages.js';
import { canonicalJson } from '../../provisioning/protocol/canonical.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';

/** What the book has applied now: the push is compared with it. */
export interface AppliedLocations {
  version: number;
  /** sha256 of the canonical form (documentHash). */
  hash: string;
}

/** The document without its locations (small); the locations come as stored parts. */
export type LocationsHead = Omit<LocationsDocument, 'locations'>;

/**
 * The compact index without the parts: built where the parts are parsed anyway (the
 * locations worker), moved to the main thread with its typed arrays transferred, so the
 * main thread neither parses nor compiles a pushed location (issue 14: that was ~20 MB
 * of short-lived objects per 2 MiB push, and the scavenges it caused delayed the INVITE).
 */
export interface CompactIndex {
  /** starts[p]: index of part p's first location; the last entry is the count. */
  starts: Int32Array;
  rules: Uint32Array;
  switchTexts: string[];
}

/**
 * A stored part: its text, or its UTF-8 bytes as the worker sends them (views of one
 * transferred buffer, off the V8 heap: 2 MiB of strings per push, copied by two
 * scavenges, then promoted and left for a full GC, were the main thread's GC cost).
 */
export type PartText = string | Uint8Array;

export type LocationsRejectCode = RejectCode | 'bad-signature' | 'wrong-device' | 'stale-version';

export type VerifiedLocations =
  | { ok: true; result: 'unchanged'; version: number; hash: string }
  | {
      ok: true;
      result: 'apply';
      version: number;
      hash: string;
      head: LocationsHead;
      count: number;
      /**
       * JSON arrays of locations, each about PART_BYTES: stored one row each and parsed one per turn.
       * From the worker: their UTF-8 bytes, views of one buffer moved to the main thread.
       */
      parts: PartText[];
      /** The parts' matcher index, when the verifier built it (the worker does): the main thread then parses no part. */
      index?: CompactIndex;
    }
  | { ok: false; code: LocationsRejectCode; reason: string };

/** Size of one stored part: parsing or writing one takes well under a millisecond on x86-64. */
export const PART_BYTES = 64 * 1024;

export function verifyLocationsPush(
  payload: Uint8Array | string,
  ctx: { deviceId: string; serverKey: KeyObject; current: AppliedLocations | null },
): VerifiedLocations {
  const d = decodePayload(
    'locations/set',
    typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
  );
  if (!d.ok) return { ok: false, code: d.code, reason: d.reason };
  const { doc, sig } = d.value;
  // One canonical form for both the signature and the hash (it is the costly step).
  let canonical: string;
  try {
    canonical = canonicalJson(doc);
  } catch (err) {
    return { ok: false, code: 'invalid', reason: `document cannot be canonicalised: ${(err as Error).message}` };
  }
  const bytes = Buffer.from(canonical, 'utf8');
  if (!/^[A-Za-z0-9_-]{86}$/.test(sig) || !verify(null, bytes, ctx.serverKey, Buffer.from(sig, 'base64url'))) {
    return { ok: false, code: 'bad-signature', reason: 'signature does not verify against the provisioned server key' };
  }
  if (doc.deviceId !== ctx.deviceId)
    return { ok: false, code: 'wrong-device', reason: `document is for ${doc.deviceId}, this phone is ${ctx.deviceId}` };
  const hash = createHash('sha256').update(bytes).digest('hex');
  const cur = ctx.current;
  if (cur && doc.version < cur.version)
    return { ok: false, code: 'stale-version', reason: `version ${doc.version} is older than applied ${cur.version}` };
  if (cur && hash === cur.hash) return { ok: true, result: 'unchanged', version: doc.version, hash };
  const { locations, ...head } = doc;
  return { ok: true, result: 'apply', version: doc.version, hash, head, count: locations.length, parts: cutParts(locations) };
}

/** JSON arrays of consecutive locations, each closed once it passes PART_BYTES. */
export function cutParts(locations: readonly unknown[]): string[] {
  const parts: string[] = [];
  let open: string[] = [];
  let size = 0;
  for (const loc of locations) {
    const text = JSON.stringify(loc);
    open.push(text);
    size += text.length + 1;
    if (size >= PART_BYTES) {
      parts.push(`[${open.join(',')}]`);
      open = [];
      size = 0;
    }
  }
  if (open.length > 0 || parts.length === 0) parts.push(`[${open.join(',')}]`);
  return parts;
}
