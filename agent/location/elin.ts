// The ELIN (Emergency Location Identification Number, ANSI/TIA-1057) a switch
// sends in LLDP-MED: a NANP number (10 digits, sometimes 11 with the leading 1)
// that the PSAP's ALI database maps to the switch port's location. As a callback
// number it must be E.164; anything else is not used.
import { isValidCallback } from '../../provisioning/protocol/address.js';

export function elinE164(elin: string | null | undefined): string | null {
  if (!elin) return null;
  const t = elin.trim().replace(/[\s().-]/g, '');
  const e164 = /^\+\d+$/.test(t) ? t : /^\d{10}$/.test(t) ? `+1${t}` : /^1\d{10}$/.test(t) ? `+${t}` : null;
  return e164 && isValidCallback(e164) ? e164 : null;
}
