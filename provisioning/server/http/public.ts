// Which routes answer without a token: the only allow list of the admin HTTP server.

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Answers without a token. Every other route, and any request no route matched, needs one. */
    public?: boolean;
    /** Only a provider's token may call it (http/auth.ts); an account's admin gets 403. */
    provider?: boolean;
  }
}

/**
 * Route options that let a route answer without a token. The allow list is the routes that
 * carry it: login and logout, health, the OpenAPI document, the portal's static shell and HELD.
 */
export const PUBLIC_ROUTE = { config: { public: true } } as const;

/** Route options of a provider's route: creating accounts, the broker files of every account's phones. */
export const PROVIDER_ROUTE = { config: { provider: true } } as const;
