// `gatehouse agent --gateway URL[,URL…] --key KEY [--ca FILE] [--config FILE]`: runs the
// egress-only agent, linked to every gateway named, until SIGINT / SIGTERM, then drains
// (up to 10 s) and exits; SIGHUP is logged and ignored.

import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { loadAgentConfig } from '../../agent/agent-config.js';
import { startAgent } from '../../agent/agent-client.js';
import { isSecretRef, resolveSecretRef } from '../../config/secret-ref.js';
import { createLogger } from '../../observability/index.js';
import { CliError } from '../cli-error.js';
import { untilSignal } from './start.js';

/** How long SIGTERM / SIGINT waits for exchanges in flight before cutting them. */
const drainGraceMs = 10_000;

export interface AgentCommandOptions {
  readonly gateway?: string | undefined;
  readonly key?: string | undefined;
  readonly ca?: string | undefined;
  readonly config?: string | undefined;
}

export async function agentCommand(options: AgentCommandOptions): Promise<void> {
  // Operators send SIGHUP to everything on a config rollout; its default action would
  // kill the agent and cut its exchanges. The agent reloads nothing (its targets and
  // credentials are read once): say so, and keep running.
  const ignoreReload = () => process.stderr.write('gatehouse agent: SIGHUP ignored: the agent does not reload; restart it to apply a changed config or key\n');
  process.on('SIGHUP', ignoreReload);
  const configFile = options.config ?? process.env['GATEHOUSE_AGENT_CONFIG'] ?? 'agent.yaml';
  if (!existsSync(configFile)) throw new CliError(`agent config file not found: ${configFile} (pass --config FILE or set GATEHOUSE_AGENT_CONFIG)`);
  const config = loadAgentConfig(configFile);
  const gatewayUrl = gatewayUrls(options.gateway ?? process.env['GATEHOUSE_GATEWAY_URL']);
  // A key on the command line is visible to other local users (ps): prefer a reference.
  const rawKey = options.key ?? process.env['GATEHOUSE_AGENT_KEY'];
  if (!rawKey) throw new CliError('--key is required (the agent key, or ${ENV_VAR} / file:/path; or set GATEHOUSE_AGENT_KEY)');
  let key: string;
  try {
    key = isSecretRef(rawKey) ? resolveSecretRef(rawKey, process.env, process.cwd()) : rawKey;
  } catch (error) {
    throw new CliError(`--key: ${(error as Error).message}`);
  }
  let ca: string | undefined;
  if (options.ca !== undefined) {
    try {
      ca = readFileSync(options.ca, 'utf8');
    } catch (error) {
      throw new CliError(`--ca: cannot read ${options.ca}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    // A key or a CSR given by mistake would only show later as every link failing to verify.
    try {
      new X509Certificate(ca);
    } catch {
      throw new CliError(`--ca: ${options.ca} is not a PEM certificate (the CA that signed the gateway's agent endpoint certificate)`);
    }
  }
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const agent = startAgent({
    gatewayUrl,
    key,
    ca,
    config,
    logger: createLogger(process.env['GATEHOUSE_LOG_LEVEL'] ?? 'info'),
    version: pkg.version,
    onState: (line) => process.stderr.write(`gatehouse agent: ${line}\n`),
  });
  await untilSignal();
  // Finish what is in flight (the gateway offers nothing new meanwhile), bounded.
  await agent.drain(drainGraceMs);
  process.stderr.write('gatehouse agent: stopped\n');
  process.off('SIGHUP', ignoreReload);
}

/**
 * `--gateway`: one agent endpoint URL, or several separated by commas (every gateway of
 * a scaled-out deployment: the agent links to each, so each has it). Each must be
 * https://, and named once: a repeated one would be a second link with the same key,
 * which the gateway refuses (409 agent_key_in_use).
 */
export function gatewayUrls(value: string | undefined): string[] {
  const urls = (value ?? '').split(',').map((url) => url.trim()).filter((url) => url !== '');
  if (urls.length === 0) throw new CliError('--gateway must be the https:// URL of the gateway\'s agent endpoint (several gateways: their URLs separated by commas)');
  const seen = new Set<string>();
  for (const url of urls) {
    if (!URL.canParse(url) || new URL(url).protocol !== 'https:') throw new CliError(`--gateway: ${url} is not an https:// URL: each must be the https:// URL of a gateway's agent endpoint`);
    const origin = new URL(url).origin;
    if (seen.has(origin)) throw new CliError(`--gateway names ${origin} twice: give each gateway once`);
    seen.add(origin);
  }
  return urls;
}
