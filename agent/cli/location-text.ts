// `e911ctl location list` as text: the check, every candidate with its source,
// method, age and the switch's ELIN, and a disagreement between the network's
// address and the provisioned one with what a 911 call sends.
import { type CivicAddress, formatAddressLines } from '../../provisioning/protocol/address.js';
import type { LocationListAnswer } from '../control/commands.js';

/** 1234 ms -> "1.2 s", 3 h -> "3 h 0 min": the age of a candidate, readable. */
export function age(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1000)} s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
  return `${Math.floor(ms / 86_400_000)} d ${Math.floor((ms % 86_400_000) / 3_600_000)} h`;
}

const one = (c: CivicAddress | undefined) => (c ? formatAddressLines(c).join(', ') : '');

export function locationListText(o: Partial<LocationListAnswer>): string {
  const best = o.best ? `${o.best.source} (${o.best.method}, ${o.best.kind})${o.best.civic ? `: ${one(o.best.civic)}` : ''}` : 'none';
  const lines = [
    `check: ${o.status} (${o.reason})`,
    `assigned: ${o.assigned ? `${o.assigned.name} [${o.assigned.id}]` : 'none'}`,
    `best location now: ${best}`,
    `ELIN from the switch: ${o.elin ?? 'none'}`,
    `policy when the network disagrees: ${o.policy ?? 'network-first'}`,
  ];
  const d = o.disagreement;
  if (d) {
    const sends =
      d.chosen === 'network' ? `the ${d.network.source} address` : d.chosen === 'provisioned' ? 'the provisioned address' : 'neither';
    lines.push(
      `LOCATION DISAGREEMENT (${d.fields.join(', ')} differ) since ${d.since}:`,
      `  network (${d.network.source}, ${d.network.method}): ${one(d.network.civic)}`,
      `  provisioned: ${one(d.provisioned.civic)}`,
      `  a 911 call sends ${sends} first, the other second${d.policy === 'ask-user' ? (d.pick ? ` (picked on the phone: ${d.pick})` : ' (not picked yet: e911ctl location use network|provisioned)') : ''}`,
    );
  }
  const cands = o.candidates ?? [];
  lines.push(`candidates (${cands.length}, best first):`);
  for (const [i, c] of cands.entries()) {
    const where = c.civic
      ? one(c.civic)
      : c.geo
        ? `${c.geo.latitude}, ${c.geo.longitude}${c.geo.altitude !== null ? ` alt ${c.geo.altitude} m` : ''}`
        : '';
    const elin = c.source === 'lldp-med' && o.elin ? `  ELIN ${o.elin}` : '';
    lines.push(
      `  ${String(i + 1).padStart(2)}. ${c.source.padEnd(11)} ${c.method.padEnd(9)} ${c.kind.padEnd(8)} age ${age(c.ageMs).padEnd(10)}${c.dispatchable ? '' : ' (not dispatchable)'}${elin}`,
    );
    if (where) lines.push(`      ${where}`);
  }
  if (o.choices && o.choices.length > 0) {
    lines.push('choices (e911ctl location select <id>, or current):');
    for (const c of o.choices)
      lines.push(
        `  ${c.id.padEnd(16)} ${c.name}${c.assigned ? ' (assigned)' : ''}${c.matches ? ' (matches this network)' : ''}\n${c.lines.map((l) => `${' '.repeat(19)}${l}`).join('\n')}`,
      );
  }
  return lines.join('\n');
}
