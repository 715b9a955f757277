// What the security-desk call says, from the notice's facts: who called, from
// where, the callback number read digit by digit, and what to press. Short: it
// repeats until someone presses 1. Worded in the notice's language (i18n.ts),
// and spoken by a voice of the site's language tag (speech.ts voiceCandidates).
import { catalogue, type NoticeLanguage } from './i18n.js';

/** The notice's facts the call speaks (EmergencyFacts has them; message.ts builds the message, so no import back). */
export interface SpokenFacts {
  test: boolean;
  callerName: string | null;
  user: string | null;
  callback: string | null;
  dialed: string | null;
  addressLines: string[];
}

/** The words of a desk call and the language tag whose voice speaks them. */
export interface SpokenMessage {
  text: string;
  /** The site's language tag (es-US, fr-CA) when the notice is translated into it, else en. */
  language: string;
}

/** A number as a synthesizer should read it: digit by digit, a NANP number grouped 3-3-4. */
export function spokenDigits(number: string): string {
  const digits = number.replace(/[^0-9]/g, '');
  const nanp = /^1?([2-9][0-9]{2})([0-9]{3})([0-9]{4})$/.exec(digits);
  const groups = nanp ? nanp.slice(1) : [digits];
  return groups.map((g) => g.split('').join(' ')).join(', ');
}

export function spokenMessage(f: SpokenFacts, lang: NoticeLanguage = 'en'): string {
  const t = catalogue(lang).spoken;
  const who = f.callerName ?? f.user ?? t.someone;
  const where = f.addressLines.length ? f.addressLines.join(', ') : t.unknownAddress;
  const callback = f.callback ? t.callback(spokenDigits(f.callback)) : t.noCallback;
  const head = f.test ? t.test(spokenDigits(f.dialed ?? '933'), who, where) : t.emergency(who, where);
  return `${head} ${callback} ${t.press1}`;
}
