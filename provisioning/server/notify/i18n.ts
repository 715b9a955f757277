// The words of a Kari's Law notice in each language the server writes them in: English,
// Spanish and French (Canada's second official language). A small typed catalogue rather
// than an i18n library: about forty strings, each language a checked object of the same
// shape, so a missing translation is a compile error, not a blank line in an emergency notice.
// Over 400 lines: three languages of the same catalogue; splitting them apart would hide a
// missing translation from the reader comparing them.

export type NoticeLanguage = 'en' | 'es' | 'fr';

/** The notice's rows, in the order they are shown; each language labels every one. */
export const ROW_KEYS = [
  'account',
  'caller',
  'directoryName',
  'user',
  'extension',
  'callerId',
  'callerIdSent',
  'callback',
  'language',
  'elin',
  'dialed',
  'address',
  'zone',
  'building',
  'floor',
  'room',
  'addressSource',
  'disagreement',
  'secondAddress',
  'otherNotSent',
  'addressMissing',
  'locationCode',
  'device',
  'deviceIp',
  'switchPort',
  'deviceMac',
  'timeLocal',
  'timeUtc',
  'placed',
  'route',
  'sipCallId',
  'eventId',
] as const;
export type RowKey = (typeof ROW_KEYS)[number];

export interface Catalogue {
  rows: Record<RowKey, string>;
  notReported: string;
  none: string;
  yes: string;
  no: string;
  /** " at SJC-A": where the call came from, after a name. */
  at(code: string): string;
  subject911(who: string, where: string): string;
  subjectTest(dialed: string, who: string, where: string): string;
  headline911: string;
  /** The first line of a 933 notice: says it is a test call and who dialed. */
  headlineTest(who: string, dialed: string, where: string): string;
  footer911: string;
  footerTest: string;
  /** `more`: sentences after the address (a second address), each ending with a period, or ''. */
  sms911(who: string, where: string, address: string, more: string, callback: string): string;
  smsTest(dialed: string, who: string, where: string, address: string, callback: string): string;
  addressNone: string;
  addressMissingSms: string;
  noAddressSms: string;
  addressMissingYes: string;
  placedNo: string;
  elinNote: string;
  /** "Caller ID sent" when it is not the phone's own number. */
  callerIdSent(sent: string, own: string, elin: boolean): string;
  /** The caller's language: its name, its tag, and whether the call carried it. */
  language(name: string, tag: string, sent: boolean): string;
  addressSent: string;
  addressProvisioned: string;
  sources: Record<'provisioned' | 'lldp-med' | 'dhcp' | 'user' | 'held', string>;
  method(m: string): string;
  disagreementSent(first: string, second: string): string;
  disagreementDropped(first: string, second: string): string;
  alsoSentSms: string;
  notSentSms: string;
  /** The floor or zone of the phone's IP beside the address sent (the "zone" row). */
  zone: {
    notLookedUp: string;
    noIp: string;
    inNoRange(ip: string): string;
    where(group: string, location: string, cidr: string, ip: string): string;
    atSent(where: string): string;
    otherLocation(where: string, location: string, code: string): string;
    otherFloor(where: string, ipFloor: string, sentFloor: string): string;
    sms(group: string): string;
    smsDiffers(group: string, location: string): string;
  };
  /** The security-desk call's words (spoken.ts): short, as it repeats until someone presses 1; numbers come as digits. */
  spoken: {
    someone: string;
    unknownAddress: string;
    emergency(who: string, where: string): string;
    test(dialed: string, who: string, where: string): string;
    callback(digits: string): string;
    noCallback: string;
    press1: string;
  };
}

const en: Catalogue = {
  rows: {
    account: 'Account',
    caller: 'Caller',
    directoryName: 'Directory name',
    user: 'User',
    extension: 'Extension',
    callerId: 'Caller ID',
    callerIdSent: 'Caller ID sent',
    callback: 'Callback number',
    language: "Caller's language",
    elin: 'ELIN',
    dialed: 'Number dialed',
    address: 'Dispatchable address',
    zone: 'Floor/zone by IP',
    building: 'Building',
    floor: 'Floor',
    room: 'Room',
    addressSource: 'Address source',
    disagreement: 'Location disagreement',
    secondAddress: 'Second address sent',
    otherNotSent: 'Other address, NOT sent',
    addressMissing: 'Address missing',
    locationCode: 'Location code',
    device: 'Device',
    deviceIp: 'Device IP',
    switchPort: 'Switch port',
    deviceMac: 'Device MAC',
    timeLocal: 'Time (location)',
    timeUtc: 'Time (UTC)',
    placed: 'Call placed',
    route: 'Route',
    sipCallId: 'SIP Call-ID',
    eventId: 'Event id',
  },
  notReported: 'not reported',
  none: 'none',
  yes: 'yes',
  no: 'no',
  at: (code) => ` at ${code}`,
  subject911: (who, where) => `EMERGENCY: 911 was called from ${who}${where}`,
  subjectTest: (dialed, who, where) => `Test Call Notification: ${dialed} test call from ${who}${where} (TEST, not an emergency)`,
  headline911:
    '911 WAS CALLED. Someone on site dialed 911. Emergency services have been called; go to the caller and help responders find them.',
  headlineTest: (who, dialed, where) =>
    `TEST CALL NOTIFICATION. This is a test: ${who} dialed the ${dialed} test number${where}. No emergency.`,
  footer911: "Sent under Kari's Law (47 CFR 9.16) by the E911 provisioning server.",
  footerTest: 'TEST ONLY: no action needed.',
  sms911: (who, where, address, more, callback) => `911 CALLED by ${who}${where}. ${address}.${more} Callback ${callback}.`,
  smsTest: (dialed, who, where, address, callback) =>
    `TEST CALL (${dialed}) from ${who}${where}. ${address}. Callback ${callback}. Test only.`,
  addressNone: 'NONE',
  addressMissingSms: 'ADDRESS MISSING',
  noAddressSms: 'No address',
  addressMissingYes: 'YES: the call went out without a validated address',
  placedNo: 'NO (the phone could not place the call)',
  elinNote: " (the switch's ELIN)",
  callerIdSent: (sent, own, elin) => `${sent}, not the phone's own number ${own}${elin ? " (the switch's ELIN was sent)" : ''}`,
  language: (name, tag, sent) => `${name} (${tag})${sent ? ', sent to the PSAP' : ''}`,
  addressSent: 'as sent to the PSAP',
  addressProvisioned: 'as provisioned to the phone; the phone did not report the address it sent',
  sources: {
    provisioned: 'the provisioned address',
    'lldp-med': "the switch's address (LLDP-MED)",
    dhcp: "the network's address (DHCP)",
    user: "the user's pick",
    held: 'the location server (HELD)',
  },
  method: (m) => `, method ${m}`,
  disagreementSent: (first, second) =>
    `YES: the phone's network and its provisioned address name different places. Sent first: ${first}. Also sent, second: ${second}.`,
  disagreementDropped: (first, second) =>
    `YES: the phone's network and its provisioned address name different places. Sent: ${first} only; ${second} could not be carried in the call (too large for the SIP packet).`,
  alsoSentSms: 'ALSO SENT',
  notSentSms: 'OTHER ADDRESS, NOT SENT',
  zone: {
    notLookedUp: 'not looked up',
    noIp: 'unknown: the phone reported no address',
    inNoRange: (ip) => `unknown: ${ip} is in no location's IP ranges`,
    where: (group, location, cidr, ip) => `${group} (${location}, ${cidr}) from ${ip}`,
    atSent: (where) => `${where}, at the address sent`,
    otherLocation: (where, location, code) =>
      `${where}. DOES NOT MATCH the address sent: the phone's IP is in ${location} (${code}), not at the address sent`,
    otherFloor: (where, ipFloor, sentFloor) =>
      `${where}. DOES NOT MATCH the address sent: the phone's IP is on floor ${ipFloor}; the address sent says floor ${sentFloor}`,
    sms: (group) => ` Zone by IP: ${group}.`,
    smsDiffers: (group, location) => ` IP ZONE DIFFERS: ${group}, ${location}.`,
  },
  spoken: {
    someone: 'a phone',
    unknownAddress: 'an unknown address',
    emergency: (who, where) => `Emergency. 9 1 1 was called by ${who}, at ${where}. Please go to the caller and help responders find them.`,
    test: (dialed, who, where) => `This is a test. A ${dialed} test call was made by ${who}, at ${where}. No emergency.`,
    callback: (digits) => `Callback number: ${digits}.`,
    noCallback: 'No callback number.',
    press1: 'Press 1 to acknowledge.',
  },
};

const es: Catalogue = {
  rows: {
    account: 'Cuenta',
    caller: 'Persona que llamó',
    directoryName: 'Nombre en el directorio',
    user: 'Usuario',
    extension: 'Extensión',
    callerId: 'Identificador de llamada',
    callerIdSent: 'Identificador enviado',
    callback: 'Número de devolución de llamada',
    language: 'Idioma de quien llamó',
    elin: 'ELIN',
    dialed: 'Número marcado',
    address: 'Dirección de despacho',
    zone: 'Piso/zona por IP',
    building: 'Edificio',
    floor: 'Piso',
    room: 'Sala',
    addressSource: 'Origen de la dirección',
    disagreement: 'Desacuerdo de ubicación',
    secondAddress: 'Segunda dirección enviada',
    otherNotSent: 'Otra dirección, NO enviada',
    addressMissing: 'Falta la dirección',
    locationCode: 'Código de ubicación',
    device: 'Dispositivo',
    deviceIp: 'IP del dispositivo',
    switchPort: 'Puerto del switch',
    deviceMac: 'MAC del dispositivo',
    timeLocal: 'Hora (ubicación)',
    timeUtc: 'Hora (UTC)',
    placed: 'Llamada realizada',
    route: 'Ruta',
    sipCallId: 'Call-ID de SIP',
    eventId: 'Id del evento',
  },
  notReported: 'no informado',
  none: 'ninguno',
  yes: 'sí',
  no: 'no',
  at: (code) => ` en ${code}`,
  subject911: (who, where) => `EMERGENCIA: se llamó al 911 desde ${who}${where}`,
  subjectTest: (dialed, who, where) =>
    `Aviso de llamada de prueba: llamada de prueba al ${dialed} de ${who}${where} (PRUEBA, no es una emergencia)`,
  headline911:
    'SE LLAMÓ AL 911. Alguien en el sitio marcó el 911. Se llamó a los servicios de emergencia; vaya con la persona que llamó y ayude a los equipos de emergencia a encontrarla.',
  headlineTest: (who, dialed, where) =>
    `AVISO DE LLAMADA DE PRUEBA. Esto es una prueba: ${who} marcó el número de prueba ${dialed}${where}. No hay emergencia.`,
  footer911: 'Enviado según la Ley de Kari (47 CFR 9.16) por el servidor de aprovisionamiento E911.',
  footerTest: 'SOLO PRUEBA: no hace falta hacer nada.',
  sms911: (who, where, address, more, callback) => `LLAMADA AL 911 de ${who}${where}. ${address}.${more} Devolver llamada al ${callback}.`,
  smsTest: (dialed, who, where, address, callback) =>
    `LLAMADA DE PRUEBA (${dialed}) de ${who}${where}. ${address}. Devolver llamada al ${callback}. Solo prueba.`,
  addressNone: 'NINGUNA',
  addressMissingSms: 'FALTA LA DIRECCIÓN',
  noAddressSms: 'Sin dirección',
  addressMissingYes: 'SÍ: la llamada salió sin una dirección validada',
  placedNo: 'NO (el teléfono no pudo realizar la llamada)',
  elinNote: ' (el ELIN del switch)',
  callerIdSent: (sent, own, elin) => `${sent}, no el número propio del teléfono ${own}${elin ? ' (se envió el ELIN del switch)' : ''}`,
  language: (name, tag, sent) => `${name} (${tag})${sent ? ', enviado al PSAP' : ''}`,
  addressSent: 'tal como se envió al PSAP',
  addressProvisioned: 'tal como se aprovisionó al teléfono; el teléfono no informó la dirección que envió',
  sources: {
    provisioned: 'la dirección aprovisionada',
    'lldp-med': 'la dirección del switch (LLDP-MED)',
    dhcp: 'la dirección de la red (DHCP)',
    user: 'la elección del usuario',
    held: 'el servidor de ubicación (HELD)',
  },
  method: (m) => `, método ${m}`,
  disagreementSent: (first, second) =>
    `SÍ: la red del teléfono y su dirección aprovisionada indican lugares distintos. Enviada primero: ${first}. También enviada, en segundo lugar: ${second}.`,
  disagreementDropped: (first, second) =>
    `SÍ: la red del teléfono y su dirección aprovisionada indican lugares distintos. Enviada: solo ${first}; ${second} no cupo en la llamada (demasiado grande para el paquete SIP).`,
  alsoSentSms: 'TAMBIÉN ENVIADA',
  notSentSms: 'OTRA DIRECCIÓN, NO ENVIADA',
  zone: {
    notLookedUp: 'no consultado',
    noIp: 'desconocido: el teléfono no informó su dirección IP',
    inNoRange: (ip) => `desconocido: ${ip} no está en los rangos IP de ninguna ubicación`,
    where: (group, location, cidr, ip) => `${group} (${location}, ${cidr}) desde ${ip}`,
    atSent: (where) => `${where}, en la dirección enviada`,
    otherLocation: (where, location, code) =>
      `${where}. NO COINCIDE con la dirección enviada: la IP del teléfono está en ${location} (${code}), no en la dirección enviada`,
    otherFloor: (where, ipFloor, sentFloor) =>
      `${where}. NO COINCIDE con la dirección enviada: la IP del teléfono está en el piso ${ipFloor}; la dirección enviada dice piso ${sentFloor}`,
    sms: (group) => ` Zona por IP: ${group}.`,
    smsDiffers: (group, location) => ` LA ZONA IP DIFIERE: ${group}, ${location}.`,
  },
  spoken: {
    someone: 'un teléfono',
    unknownAddress: 'una dirección desconocida',
    emergency: (who, where) =>
      `Emergencia. Llamada al 9 1 1 de ${who}, en ${where}. Por favor, vaya con la persona y ayude a los servicios de emergencia a encontrarla.`,
    test: (dialed, who, where) => `Esto es una prueba. Llamada de prueba al ${dialed} de ${who}, en ${where}. No hay emergencia.`,
    callback: (digits) => `Número para devolver la llamada: ${digits}.`,
    noCallback: 'No hay número para devolver la llamada.',
    press1: 'Presione 1 para confirmar.',
  },
};

const fr: Catalogue = {
  rows: {
    account: 'Compte',
    caller: 'Appelant',
    directoryName: 'Nom dans l’annuaire',
    user: 'Utilisateur',
    extension: 'Poste',
    callerId: 'Identification de l’appelant',
    callerIdSent: 'Identification envoyée',
    callback: 'Numéro de rappel',
    language: 'Langue de l’appelant',
    elin: 'ELIN',
    dialed: 'Numéro composé',
    address: 'Adresse de répartition',
    zone: "Étage/zone selon l'IP",
    building: 'Bâtiment',
    floor: 'Étage',
    room: 'Pièce',
    addressSource: 'Source de l’adresse',
    disagreement: 'Désaccord de localisation',
    secondAddress: 'Deuxième adresse envoyée',
    otherNotSent: 'Autre adresse, NON envoyée',
    addressMissing: 'Adresse manquante',
    locationCode: 'Code de l’emplacement',
    device: 'Appareil',
    deviceIp: 'IP de l’appareil',
    switchPort: 'Port du commutateur',
    deviceMac: 'MAC de l’appareil',
    timeLocal: 'Heure (emplacement)',
    timeUtc: 'Heure (UTC)',
    placed: 'Appel effectué',
    route: 'Route',
    sipCallId: 'Call-ID SIP',
    eventId: 'Id de l’événement',
  },
  notReported: 'non indiqué',
  none: 'aucun',
  yes: 'oui',
  no: 'non',
  at: (code) => ` à ${code}`,
  subject911: (who, where) => `URGENCE : le 911 a été composé par ${who}${where}`,
  subjectTest: (dialed, who, where) => `Avis d’appel de test : appel de test au ${dialed} par ${who}${where} (TEST, pas une urgence)`,
  headline911:
    'LE 911 A ÉTÉ COMPOSÉ. Quelqu’un sur place a composé le 911. Les services d’urgence ont été appelés; rejoignez l’appelant et aidez les secours à le trouver.',
  headlineTest: (who, dialed, where) =>
    `AVIS D’APPEL DE TEST. Ceci est un test : ${who} a composé le numéro de test ${dialed}${where}. Aucune urgence.`,
  footer911: 'Envoyé en vertu de la loi de Kari (47 CFR 9.16) par le serveur d’approvisionnement E911.',
  footerTest: 'TEST SEULEMENT : aucune action requise.',
  sms911: (who, where, address, more, callback) => `APPEL AU 911 par ${who}${where}. ${address}.${more} Rappel ${callback}.`,
  smsTest: (dialed, who, where, address, callback) =>
    `APPEL DE TEST (${dialed}) par ${who}${where}. ${address}. Rappel ${callback}. Test seulement.`,
  addressNone: 'AUCUNE',
  addressMissingSms: 'ADRESSE MANQUANTE',
  noAddressSms: 'Aucune adresse',
  addressMissingYes: 'OUI : l’appel est parti sans adresse validée',
  placedNo: 'NON (le téléphone n’a pas pu passer l’appel)',
  elinNote: ' (l’ELIN du commutateur)',
  callerIdSent: (sent, own, elin) => `${sent}, et non le numéro du téléphone ${own}${elin ? ' (l’ELIN du commutateur a été envoyé)' : ''}`,
  language: (name, tag, sent) => `${name} (${tag})${sent ? ', transmise au CASP' : ''}`,
  addressSent: 'telle qu’envoyée au CASP',
  addressProvisioned: 'telle qu’approvisionnée au téléphone; le téléphone n’a pas indiqué l’adresse envoyée',
  sources: {
    provisioned: 'l’adresse approvisionnée',
    'lldp-med': 'l’adresse du commutateur (LLDP-MED)',
    dhcp: 'l’adresse du réseau (DHCP)',
    user: 'le choix de l’utilisateur',
    held: 'le serveur de localisation (HELD)',
  },
  method: (m) => `, méthode ${m}`,
  disagreementSent: (first, second) =>
    `OUI : le réseau du téléphone et son adresse approvisionnée désignent des lieux différents. Envoyée d’abord : ${first}. Envoyée aussi, en second : ${second}.`,
  disagreementDropped: (first, second) =>
    `OUI : le réseau du téléphone et son adresse approvisionnée désignent des lieux différents. Envoyée : ${first} seulement; ${second} n’a pas pu être transmise dans l’appel (trop grande pour le paquet SIP).`,
  alsoSentSms: 'AUSSI ENVOYÉE',
  notSentSms: 'AUTRE ADRESSE, NON ENVOYÉE',
  zone: {
    notLookedUp: 'non recherché',
    noIp: "inconnu : le téléphone n'a pas indiqué son adresse IP",
    inNoRange: (ip) => `inconnu : ${ip} n'est dans les plages IP d'aucun emplacement`,
    where: (group, location, cidr, ip) => `${group} (${location}, ${cidr}) depuis ${ip}`,
    atSent: (where) => `${where}, à l'adresse envoyée`,
    otherLocation: (where, location, code) =>
      `${where}. NE CORRESPOND PAS à l'adresse envoyée : l'IP du téléphone est à ${location} (${code}), pas à l'adresse envoyée`,
    otherFloor: (where, ipFloor, sentFloor) =>
      `${where}. NE CORRESPOND PAS à l'adresse envoyée : l'IP du téléphone est à l'étage ${ipFloor}; l'adresse envoyée indique l'étage ${sentFloor}`,
    sms: (group) => ` Zone selon l'IP : ${group}.`,
    smsDiffers: (group, location) => ` ZONE IP DIFFÉRENTE : ${group}, ${location}.`,
  },
  spoken: {
    someone: 'un téléphone',
    unknownAddress: 'une adresse inconnue',
    emergency: (who, where) =>
      `Urgence. Appel au 9 1 1 de ${who}, à ${where}. Rendez-vous auprès de la personne et aidez les secours à la trouver.`,
    test: (dialed, who, where) => `Ceci est un test. Appel de test au ${dialed} de ${who}, à ${where}. Aucune urgence.`,
    callback: (digits) => `Numéro de rappel : ${digits}.`,
    noCallback: 'Aucun numéro de rappel.',
    press1: 'Appuyez sur 1 pour confirmer.',
  },
};

const CATALOGUES: Record<NoticeLanguage, Catalogue> = { en, es, fr };

/** The language a notice for a site with this tag is written in: its primary subtag when translated, else English. */
export function noticeLanguage(tag: string | null | undefined): NoticeLanguage {
  const primary = (tag ?? '').toLowerCase().split('-')[0]!;
  return primary in CATALOGUES ? (primary as NoticeLanguage) : 'en';
}

export function catalogue(lang: NoticeLanguage): Catalogue {
  return CATALOGUES[lang];
}

/** A language tag's name in the notice's language ("Spanish", "espagnol"); the tag itself if unknown. */
export function languageName(tag: string, inLanguage: NoticeLanguage): string {
  try {
    return new Intl.DisplayNames([inLanguage], { type: 'language' }).of(tag) ?? tag;
  } catch {
    // A tag Intl does not accept (the schema lets through only well-formed ones, but events are the phone's).
    return tag;
  }
}
