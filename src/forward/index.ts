export type { Forwarder, ForwardRequest, ForwardResponse } from './forwarder.js';
export { createLocalHttpForwarder, mapUpstreamError, type LocalHttpTarget } from './local-http-forwarder.js';
export { createAgentForwarder, type AgentTarget } from './agent-forwarder.js';
