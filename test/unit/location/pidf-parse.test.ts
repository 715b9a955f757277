import { describe, expect, it } from 'vitest';
import { parseHeldResponse } from '../../../agent/location/held.js';
import { parseXml, XmlError } from '../../../provisioning/pidf/xml.js';

// A LIS answer in the shape of RFC 5985 section 10 / RFC 5491: a civic address and a
// circle in two geopriv elements, prefixes chosen differently from ours on purpose.
const RESPONSE = `<?xml version="1.0"?>
<locationResponse xmlns="urn:ietf:params:xml:ns:geopriv:held">
  <locationUriSet expires="2026-12-01T00:00:00Z">
    <locationURI>https://lis.example.com:8222/lis/abc</locationURI>
  </locationUriSet>
  <presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:3650n87934c@ls.example.com">
    <tuple id="b650sf789nd">
      <status>
        <geopriv xmlns="urn:ietf:params:xml:ns:pidf:geopriv10">
          <location-info>
            <c:civicAddress xmlns:c="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" xml:lang="en">
              <c:country>US</c:country><c:A1>TX</c:A1><c:A3>Austin</c:A3><c:RD>Congress</c:RD><c:STS>Ave</c:STS>
              <c:HNO>1100</c:HNO><c:PC>78701</c:PC><c:FLR>4 &amp; up</c:FLR>
            </c:civicAddress>
          </location-info>
          <method>Wiremap</method>
        </geopriv>
      </status>
    </tuple>
    <tuple id="x2"><status>
      <gp:geopriv xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0">
        <gp:location-info>
          <gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>30.2747 -97.7404</gml:pos>
            <gs:radius uom="urn:ogc:def:uom:EPSG::9001">15</gs:radius></gs:Circle>
        </gp:location-info>
        <gp:method>Wiremap</gp:method>
      </gp:geopriv>
    </status></tuple>
  </presence>
</locationResponse>`;

describe('HELD response and PIDF-LO parsing', () => {
  it('finds the civic address, the circle and the method', () => {
    expect(parseHeldResponse(RESPONSE)).toEqual({
      ok: true,
      civic: { country: 'US', A1: 'TX', A3: 'Austin', RD: 'Congress', STS: 'Ave', HNO: '1100', PC: '78701', FLR: '4 & up' },
      geo: { latitude: 30.2747, longitude: -97.7404, altitude: null, radius: 15 },
      method: 'Wiremap',
      locationUris: ['https://lis.example.com:8222/lis/abc'],
    });
  });

  it('returns HELD errors with their code', () => {
    const err = `<error xmlns="urn:ietf:params:xml:ns:geopriv:held" code="locationUnknown"><message xml:lang="en">Unable to determine location</message></error>`;
    expect(parseHeldResponse(err)).toEqual({ ok: false, code: 'locationUnknown', message: 'Unable to determine location' });
  });

  it('refuses DOCTYPEs (no entity expansion) and broken documents', () => {
    expect(() => parseXml('<!DOCTYPE x [<!ENTITY a "b">]><x/>')).toThrow(XmlError);
    expect(() => parseXml('<a><b></a>')).toThrow(XmlError);
    expect(() => parseXml('<p:a/>')).toThrow(/unbound namespace prefix/);
    expect(parseHeldResponse('not xml')).toMatchObject({ ok: false, code: 'badResponse' });
  });
});
