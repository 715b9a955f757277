// The MQTT contract between phone and provisioning server: one module, both ends.
export * from './address.js';
export * from './call-site.js';
export * from './canonical.js';
export * from './locations.js';
export * from './messages.js';
export * from './signing.js';
export * from './topics.js';
