// `gatehouse policy check`: a dry run of the policy for one would-be request. Prints the
// decision, then every rule with each criterion (✓ held, ✗ did not), so an operator
// sees why a rule applied or not. Nothing is forwarded, counted or recorded.

import { readFileSync } from 'node:fs';
import { loadConfig } from '../../config/index.js';
import { disguisedEntityTypes } from '../../mask/index.js';
import type { IdentityKind } from '../../exchange/index.js';
import { GatehouseError } from '../../errors/index.js';
import { buildPolicy, PolicyError, type Explanation } from '../../policy/index.js';
import { dryRunExchange } from '../../protocols/http/index.js';
import { dryRunStatement } from '../../protocols/postgres/index.js';
import { CliError } from '../cli-error.js';
import { configPath } from '../config-path.js';
import { parseIsoTime } from '../../config/units.js';

export interface PolicyCheckOptions {
  readonly config?: string | undefined;
  readonly as?: string | undefined;
  readonly groups?: string | undefined;
  readonly kind?: string | undefined;
  readonly connection?: string | undefined;
  readonly operation?: string | undefined;
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  readonly request?: string | undefined;
  readonly 'content-type'?: string | undefined;
  readonly at?: string | undefined;
  readonly json?: boolean | undefined;
}

const usage = 'usage: gatehouse policy check --config FILE --as SUBJECT --groups a,b [--kind human|service|agent] --connection C [--operation OP] [--method M] [--path P] [--request FILE [--content-type T]] [--at TIME] [--json]';

export async function policyCommand(action: string | undefined, options: PolicyCheckOptions): Promise<void> {
  if (action !== 'check') throw new CliError(usage);
  if (!options.as || !options.connection) throw new CliError(`--as and --connection are required\n${usage}`);
  const kind = (options.kind ?? 'service') as IdentityKind;
  if (!['human', 'service', 'agent'].includes(kind)) throw new CliError('--kind must be human, service or agent');
  const at = options.at === undefined ? undefined : parseIsoTime(options.at);
  if (options.at !== undefined && at === undefined) throw new CliError('--at must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z');

  const file = configPath(options.config);
  const config = loadConfig(file, process.env, { secrets: 'store-only' });
  const connection = config.connections.find((c) => c.name === options.connection);
  if (!connection) throw new CliError(`no connection named "${options.connection}" in ${file}`);
  let body: Buffer | undefined;
  if (options.request) {
    try {
      body = readFileSync(options.request);
    } catch (error) {
      throw new CliError(`cannot read --request ${options.request}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  let policy;
  try {
    policy = buildPolicy(config, { detectEntities: disguisedEntityTypes });
  } catch (error) {
    if (error instanceof PolicyError) throw new CliError(`invalid policy in ${file}: ${error.message}`, 1);
    throw error;
  }
  const groups = (options.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean);
  let exchange;
  if (connection.type === 'postgres') {
    // --request FILE is the SQL statement, inspected as the listener would.
    try {
      exchange = await dryRunStatement({ subject: options.as, groups, kind, connection: connection.name, sql: body?.toString('utf8'), operation: options.operation, at });
    } catch (error) {
      if (error instanceof GatehouseError) throw new CliError(`${error.message}${body === undefined ? ' Pass --request FILE (the SQL) or --operation.' : ''}`);
      throw error;
    }
  } else {
    try {
      exchange = dryRunExchange({
        subject: options.as,
        groups,
        kind,
        connection: connection.name,
        connectionType: connection.type,
        operation: options.operation,
        method: options.method,
        path: options.path,
        body,
        contentType: options['content-type'],
        at,
      });
    } catch (error) {
      // a body the gateway itself would refuse (not JSON, not an object): say so, no stack
      if (error instanceof GatehouseError) throw new CliError(`${error.code === 'invalid_path' ? `--path ${options.path}` : `--request ${options.request}`}: ${error.message}`);
      throw error;
    }
  }
  const explanation = policy.explain(exchange);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ operation: exchange.operation, ...explanation }, null, 2)}\n`);
    return;
  }
  // Without a body an openai request has no model or prompt text: say so, since a rule on them cannot match.
  const note = connection.type === 'openai' && body === undefined && exchange.facts.method === 'POST' ? 'no --request: checked without a body (no model, no prompt text for rules to read)' : undefined;
  process.stdout.write(formatExplanation(explanation, exchange.operation, note));
}

export function formatExplanation({ decision, rules }: Explanation, operation: string, note?: string): string {
  const lines = [
    `decision   ${decision.effect} (${decision.reason})`,
    `rules      ${decision.rules.join(', ')}`,
    ...(decision.message ? [`message    ${decision.message}`] : []),
    ...(decision.obligations ? [`obligations ${JSON.stringify(decision.obligations)}`] : []),
    `operation  ${operation}`,
    `policy     ${decision.policyVersion}`,
    ...(note ? [`note       ${note}`] : []),
    '',
    'rules evaluated (✓ held, ✗ did not):',
  ];
  for (const rule of rules) {
    const verdict = rule.matched ? (rule.on === 'response' ? 'applies (checks the answer)' : 'MATCHED') : 'no match';
    lines.push(`  ${rule.matched ? '●' : '○'} ${rule.rule}  [${rule.on === 'response' ? 'response ' : ''}${rule.effect}]  ${verdict}`);
    if (rule.checks.length === 0) lines.push('      (no criteria: applies to every request)');
    for (const check of rule.checks) lines.push(`      ${check.ok ? '✓' : '✗'} ${check.criterion}`);
  }
  if (decision.rules[0] === 'default-deny') lines.push('  ● default-deny  [deny]  MATCHED (no rule allows the request)');
  return `${lines.join('\n')}\n`;
}
