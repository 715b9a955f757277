// Typed errors: each carries a stable code that logs, the CLI and events can use.
export class E911Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ConfigError extends E911Error {
  constructor(readonly problems: { key: string; reason: string }[]) {
    super('config-invalid', `invalid configuration:\n${problems.map((p) => `  ${p.key}: ${p.reason}`).join('\n')}`);
  }
}

export class StoreError extends E911Error {}

export class AddressRejectedError extends E911Error {
  constructor(
    code: AddressRejectCode,
    message: string,
  ) {
    super(code, message);
  }
}

export type AddressRejectCode =
  | 'malformed'
  | 'unsigned'
  | 'bad-signature'
  | 'invalid-address'
  | 'wrong-device'
  | 'stale-version'
  | 'version-conflict';

export class ControlError extends E911Error {}
