// The logger hal/ asks for: the few calls it makes, typed structurally, so hal/ needs
// nothing of the agent's or the server's (a pino logger fits, and so does a test's).
export interface HalLogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface HalLogger {
  child(bindings: Record<string, unknown>): HalLogger;
  debug: HalLogFn;
  info: HalLogFn;
  warn: HalLogFn;
  error: HalLogFn;
}
