import { CliError } from '../cli-error.js';
import { checkedConfig } from '../config-problems.js';

/** Lists every problem of the config (see config-problems.ts) and exits 1, or says what it holds. */
export function configCheckCommand(file: string | undefined): void {
  if (!file) throw new CliError('usage: gatehouse config check FILE');
  const { config, policy } = checkedConfig(file);
  const store = 'sqlite' in config.store ? `sqlite ${config.store.sqlite.path}` : 'postgres';
  process.stdout.write(`${file}: valid — ${config.connections.length} connection(s): ${config.connections.map((c) => `${c.name} (${c.type})`).join(', ') || 'none'}; store: ${store}; policy ${policy.version}: ${policy.ruleCount} rule(s)\n`);
}
