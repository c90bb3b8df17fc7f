// In-process gateway + agent for the tunnel tests: a real gateway (startGateway) with
// its agent endpoint on TLS, real agents (startAgent) dialing it, targets listening on
// 127.0.0.2 — an address the gateway's config never names.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig } from '../../src/agent/agent-config.js';
import { startAgent, type Agent } from '../../src/agent/agent-client.js';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

export const silent = createLogger('silent');

export interface TunnelGateway {
  readonly gateway: Gateway;
  readonly pki: TestPki;
  readonly agentsUrl: string;
  readonly callerKey: string;
  readonly adminKey: string;
  close(): Promise<void>;
}

/** `connectionsYaml` is the `connections:` list body (indented by 2). */
export async function startTunnelGateway(connectionsYaml: string, options: { env?: NodeJS.ProcessEnv; agentsExtra?: string } = {}): Promise<TunnelGateway> {
  const pki = makeTestPki();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-agent-'));
  const yaml = `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: silent }
store:
  sqlite: { path: ${join(dir, 'g.db')} }
agents:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { cert: file:${pki.certPath}, key: file:${pki.keyPath} }
${options.agentsExtra ?? ''}
connections:
${connectionsYaml}`;
  const config = parseConfig(yaml, join(dir, 'gatehouse.yaml'), { ...process.env, ...options.env });
  const gateway = await startGateway(config, { logger: silent });
  const { token: callerKey } = await gateway.apiKeys.create({ name: 'caller', kind: 'service', groups: ['ml'], expiresAt: null });
  const { token: adminKey } = await gateway.apiKeys.create({ name: 'admin', kind: 'service', groups: ['admins'], expiresAt: null });
  return {
    gateway,
    pki,
    agentsUrl: gateway.agentsUrl!,
    callerKey,
    adminKey,
    async close() {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(pki.dir, { recursive: true, force: true });
    },
  };
}

export async function agentKey(gw: TunnelGateway, name: string, groups: string[], kind: 'agent' | 'service' = 'agent'): Promise<string> {
  return (await gw.gateway.apiKeys.create({ name, kind, groups, expiresAt: null })).token;
}

/** Starts an in-process agent and resolves once the gateway has welcomed it. */
export async function startTestAgent(gw: TunnelGateway, key: string, agentYaml: string, env: NodeJS.ProcessEnv = {}): Promise<{ agent: Agent; states: string[] }> {
  const config = parseAgentConfig(agentYaml, join(gw.pki.dir, 'agent.yaml'), { ...process.env, ...env });
  const states: string[] = [];
  let connected!: () => void;
  let refused!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    connected = resolve;
    refused = reject;
  });
  const agent = startAgent({
    gatewayUrl: gw.agentsUrl,
    key,
    ca: gw.pki.ca,
    config: { ...config, reconnect: { initial: 100, max: 500 } },
    logger: silent,
    version: 'test',
    onState: (line) => {
      states.push(line);
      if (line.startsWith('connected')) connected();
      if (line.startsWith('refused')) refused(new Error(line));
    },
  });
  try {
    await ready;
  } catch (error) {
    // A refused agent keeps retrying with backoff (as a real one does); stop it here.
    await agent.close();
    throw error;
  }
  return { agent, states };
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
