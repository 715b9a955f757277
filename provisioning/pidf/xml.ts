// A small, strict-enough XML reader for HELD responses and PIDF-LO: elements,
// attributes, text, namespaces resolved to URIs. No DTDs, no external entities
// (a LIS answer must never make the phone fetch anything). Throws XmlError.

export class XmlError extends Error {}

export interface XmlElement {
  /** Namespace URI ('' when none). */
  ns: string;
  /** Local name. */
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside this element. */
  text: string;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/g, (whole, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw new XmlError(`unknown entity ${whole}`);
    return v;
  });
}

const NAME = /[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?/y;
const MAX_DEPTH = 64;

export function parseXml(src: string, maxBytes = 256 * 1024): XmlElement {
  if (src.length > maxBytes) throw new XmlError(`document larger than ${maxBytes} characters`);
  let i = 0;
  const stack: { el: XmlElement; qname: string; nsMap: Map<string, string> }[] = [];
  let root: XmlElement | null = null;

  const fail = (msg: string): never => {
    throw new XmlError(`${msg} at offset ${i}`);
  };

  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const textEnd = lt < 0 ? src.length : lt;
    if (textEnd > i) {
      const raw = src.slice(i, textEnd);
      if (stack.length > 0) stack[stack.length - 1]!.el.text += decodeEntities(raw);
      else if (raw.trim() !== '') fail('text outside the root element');
      i = textEnd;
      continue;
    }
    if (src.startsWith('<?', i)) {
      const end = src.indexOf('?>', i);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
    } else if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i);
      if (end < 0) fail('unterminated CDATA');
      if (stack.length === 0) fail('CDATA outside the root element');
      stack[stack.length - 1]!.el.text += src.slice(i + 9, end);
      i = end + 3;
    } else if (src.startsWith('<!', i)) {
      fail('DOCTYPE and declarations are not accepted');
    } else if (src.startsWith('</', i)) {
      i += 2;
      NAME.lastIndex = i;
      const m = NAME.exec(src);
      if (!m) fail('bad closing tag');
      i = NAME.lastIndex;
      while (/\s/.test(src[i] ?? '')) i++;
      if (src[i] !== '>') fail('bad closing tag');
      i++;
      const top = stack.pop();
      if (!top || top.qname !== m![0]) fail(`mismatched </${m![0]}>`);
    } else {
      i++;
      NAME.lastIndex = i;
      const m = NAME.exec(src);
      if (!m) fail('bad element name');
      const qname = m![0];
      i = NAME.lastIndex;
      const rawAttrs: [string, string][] = [];
      for (;;) {
        while (/\s/.test(src[i] ?? '')) i++;
        if (src[i] === '>' || src.startsWith('/>', i)) break;
        NAME.lastIndex = i;
        const a = NAME.exec(src);
        if (!a) fail('bad attribute');
        i = NAME.lastIndex;
        while (/\s/.test(src[i] ?? '')) i++;
        if (src[i] !== '=') fail('attribute without value');
        i++;
        while (/\s/.test(src[i] ?? '')) i++;
        const q = src[i];
        if (q !== '"' && q !== "'") fail('unquoted attribute');
        const end = src.indexOf(q!, i + 1);
        if (end < 0) fail('unterminated attribute');
        rawAttrs.push([a![0], decodeEntities(src.slice(i + 1, end))]);
        i = end + 1;
      }
      const selfClosing = src.startsWith('/>', i);
      i += selfClosing ? 2 : 1;

      const parentMap = stack.length > 0 ? stack[stack.length - 1]!.nsMap : new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]);
      let nsMap = parentMap;
      for (const [k, v] of rawAttrs) {
        if (k === 'xmlns' || k.startsWith('xmlns:')) {
          if (nsMap === parentMap) nsMap = new Map(parentMap);
          nsMap.set(k === 'xmlns' ? '' : k.slice(6), v);
        }
      }
      const resolve = (q: string, isAttr: boolean): [string, string] => {
        const c = q.indexOf(':');
        if (c < 0) return [isAttr ? '' : (nsMap.get('') ?? ''), q];
        const prefix = q.slice(0, c);
        const uri = nsMap.get(prefix);
        if (uri === undefined) fail(`undeclared prefix ${prefix}`);
        return [uri!, q.slice(c + 1)];
      };
      const [ns, name] = resolve(qname, false);
      const attrs: Record<string, string> = {};
      for (const [k, v] of rawAttrs) {
        if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
        attrs[k.startsWith('xml:') ? k : resolve(k, true)[1]] = v;
      }
      const el: XmlElement = { ns, name, attrs, children: [], text: '' };
      if (stack.length > 0) stack[stack.length - 1]!.el.children.push(el);
      else if (root) fail('more than one root element');
      else root = el;
      if (!selfClosing) {
        if (stack.length >= MAX_DEPTH) fail('nesting too deep');
        stack.push({ el, qname, nsMap });
      }
    }
  }
  if (stack.length > 0) throw new XmlError(`unclosed <${stack[stack.length - 1]!.qname}>`);
  if (!root) throw new XmlError('no root element');
  return root;
}

/** Every descendant (depth first) with this namespace and local name. */
export function findAll(el: XmlElement, ns: string, name: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.ns === ns && c.name === name) out.push(c);
    findAll(c, ns, name, out);
  }
  return out;
}

export function child(el: XmlElement, ns: string, name: string): XmlElement | undefined {
  return el.children.find((c) => c.ns === ns && c.name === name);
}
