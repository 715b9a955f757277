// The XML reader for HELD messages and PIDF-LO: elements, attributes, text,
// namespaces resolved to URIs, built on saxes (a conformant, namespace-aware
// SAX parser). A DOCTYPE is refused outright, never read for entities: a LIS
// answer must never make the phone expand or fetch anything (billion laughs,
// XXE). Throws XmlError (XmlDoctypeError for a DOCTYPE).
import { SaxesParser, type SaxesTagNS } from 'saxes';

export class XmlError extends Error {}

/** The document carries a DOCTYPE (where entity bombs and external entities live). */
export class XmlDoctypeError extends XmlError {}

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

const MAX_DEPTH = 64;

function toElement(tag: SaxesTagNS): XmlElement {
  const attrs: Record<string, string> = {};
  for (const a of Object.values(tag.attributes)) {
    if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
    // xml:lang and xml:space keep their prefix; other attributes go by local name.
    attrs[a.prefix === 'xml' ? a.name : a.local] = a.value;
  }
  return { ns: tag.uri, name: tag.local, attrs, children: [], text: '' };
}

export function parseXml(src: string, maxBytes = 256 * 1024): XmlElement {
  if (src.length > maxBytes) throw new XmlError(`document larger than ${maxBytes} characters`);
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const where = (): string => `line ${parser.line} column ${parser.column + 1}`;

  // saxes' own errors carry "line:column: message"; a handler that throws stops the parse.
  parser.on('error', (err) => {
    throw new XmlError(err.message);
  });
  parser.on('doctype', () => {
    throw new XmlDoctypeError(`DOCTYPE and declarations are not accepted (${where()})`);
  });
  parser.on('opentag', (tag) => {
    const el = toElement(tag);
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root = el;
    if (!tag.isSelfClosing) {
      if (stack.length >= MAX_DEPTH) throw new XmlError(`nesting too deep (${where()})`);
      stack.push(el);
    }
  });
  parser.on('closetag', (tag) => {
    if (!tag.isSelfClosing) stack.pop();
  });
  const onText = (t: string): void => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  try {
    parser.write(src).close();
  } catch (err) {
    if (err instanceof XmlError) throw err;
    // saxes throws plain Errors only through the handler above; anything else is a bug there.
    throw new XmlError(err instanceof Error ? err.message : String(err));
  }
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
