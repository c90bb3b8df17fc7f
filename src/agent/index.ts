export { startAgentHub, type AgentHub, type AgentHubStatus, type AgentSessionStatus, type AgentExchange } from './agent-hub.js';
export { registerAgentMetrics } from './agent-metrics.js';
