// The error base both ends use: each error carries a stable code that logs, the CLI,
// events and the HTTP API can use.
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
