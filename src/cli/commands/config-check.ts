import { assertCertificates, loadConfig } from '../../config/index.js';
import { disguisedEntityTypes } from '../../mask/index.js';
import { buildPolicy, PolicyError } from '../../policy/index.js';
import { CliError } from '../cli-error.js';

export function configCheckCommand(file: string | undefined): void {
  if (!file) throw new CliError('usage: gatehouse config check FILE');
  const config = loadConfig(file);
  assertCertificates(file, config);
  // The policy too: policy files, packs, and checks across rules (unique names …).
  let policy;
  try {
    policy = buildPolicy(config, { detectEntities: disguisedEntityTypes });
  } catch (error) {
    if (error instanceof PolicyError) throw new CliError(`invalid policy in ${file}: ${error.message}`, 1);
    throw error;
  }
  const store = 'sqlite' in config.store ? `sqlite ${config.store.sqlite.path}` : 'postgres';
  process.stdout.write(`${file}: valid — ${config.connections.length} connection(s): ${config.connections.map((c) => `${c.name} (${c.type})`).join(', ') || 'none'}; store: ${store}; policy ${policy.version}: ${policy.ruleCount} rule(s)\n`);
}
