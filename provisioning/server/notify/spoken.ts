// What the security-desk call says, from the notice's facts: who called, from
// where, the callback number read digit by digit, and what to press. Short: it
// repeats until someone presses 1.
import type { EmergencyFacts } from './message.js';

/** A number as a synthesizer should read it: digit by digit, a NANP number grouped 3-3-4. */
export function spokenDigits(number: string): string {
  const digits = number.replace(/[^0-9]/g, '');
  const nanp = /^1?([2-9][0-9]{2})([0-9]{3})([0-9]{4})$/.exec(digits);
  const groups = nanp ? nanp.slice(1) : [digits];
  return groups.map((g) => g.split('').join(' ')).join(', ');
}

export function spokenMessage(f: EmergencyFacts): string {
  const who = f.callerName ?? f.user ?? 'a phone';
  const where = f.addressLines.length ? f.addressLines.join(', ') : 'an unknown address';
  const callback = f.callback ? `Callback number: ${spokenDigits(f.callback)}.` : 'No callback number.';
  const head = f.test
    ? `This is a test. A ${spokenDigits(f.dialed ?? '933')} test call was made by ${who}, at ${where}. No emergency.`
    : `Emergency. 9 1 1 was called by ${who}, at ${where}. Please go to the caller and help responders find them.`;
  return `${head} ${callback} Press 1 to acknowledge.`;
}
