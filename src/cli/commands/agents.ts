// `gatehouse agents list`: the agents connected to a running gateway, read from its
// admin API (GET /api/agents) — agent status is live state, not stored.

import { loadConfig } from '../../config/index.js';
import { CliError } from '../cli-error.js';
import { configPath } from '../config-path.js';
import { unreachableAdmin } from '../unreachable-admin.js';
import { printTable } from './keys.js';

export interface AgentsOptions {
  readonly config?: string | undefined;
  readonly admin?: string | undefined;
  readonly key?: string | undefined;
  readonly json?: boolean | undefined;
}

interface Status {
  enabled: boolean;
  queued: number;
  agents: Array<{ session: string; name: string; subject: string; connections: string[]; inFlight: number; concurrency: number; remoteAddress: string | null; connectedAt: string; lastHeartbeatAt: string }>;
  routes: Array<{ connection: string; agent: string; connectedAgents: number }>;
}

export async function agentsCommand(action: string | undefined, options: AgentsOptions): Promise<void> {
  if (action !== 'list') throw new CliError('usage: gatehouse agents list [--admin URL] [--key ADMIN_KEY] [--config FILE] [--json]');
  let admin = options.admin;
  if (admin === undefined) {
    const config = loadConfig(configPath(options.config), process.env, { secrets: 'store-only' });
    const { host, port } = config.admin.listen;
    admin = `${config.admin.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  const key = options.key ?? process.env['GATEHOUSE_ADMIN_KEY'];
  if (!key) throw new CliError('--key (or GATEHOUSE_ADMIN_KEY) is required: an API key in one of admin.groups');
  let res: Response;
  try {
    res = await fetch(new URL('/api/agents', admin), { headers: { authorization: `Bearer ${key}` } });
  } catch (error) {
    throw unreachableAdmin(admin, error);
  }
  const body = (await res.json()) as Status & { error?: { code: string; message: string } };
  if (!res.ok) throw new CliError(`admin API answered ${res.status}: ${body.error?.code}: ${body.error?.message}`, 1);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return;
  }
  if (!body.enabled) {
    process.stdout.write('the agent endpoint is not enabled on this gateway (no agents: section)\n');
    return;
  }
  printTable(
    ['AGENT', 'SESSION', 'SUBJECT', 'CONNECTIONS', 'IN FLIGHT', 'ADDRESS', 'CONNECTED', 'LAST HEARTBEAT'],
    body.agents.map((a) => [a.name, a.session, a.subject, a.connections.join(','), `${a.inFlight}/${a.concurrency}`, a.remoteAddress ?? '-', a.connectedAt, a.lastHeartbeatAt]),
  );
  process.stdout.write('\n');
  printTable(['CONNECTION', 'VIA', 'AGENTS CONNECTED'], body.routes.map((r) => [r.connection, `agent:${r.agent}`, String(r.connectedAgents)]));
  if (body.queued > 0) process.stdout.write(`\n${body.queued} request(s) waiting for an agent\n`);
}
