export type { ChunkReader, Forwarder, ForwardRequest, ForwardResponse, ForwardSignal } from './forwarder.js';
export { ForwardAbort } from './forward-abort.js';
export { createLocalHttpForwarder, localForwarderFor, mapUpstreamError, type HttpTargetConfig, type LocalHttpTarget } from './local-http-forwarder.js';
export { createAgentForwarder, type AgentTarget } from './agent-forwarder.js';
