export type { Forwarder, ForwardRequest, ForwardResponse } from './forwarder.js';
export { createLocalHttpForwarder, localForwarderFor, mapUpstreamError, type HttpTargetConfig, type LocalHttpTarget } from './local-http-forwarder.js';
export { createAgentForwarder, type AgentTarget } from './agent-forwarder.js';
