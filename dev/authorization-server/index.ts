// The development authorization server (oidc-provider) used by tests, benchmarks and the demo.
export * from './server.ts';
