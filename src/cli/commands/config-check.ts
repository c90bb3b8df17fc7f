import { loadConfig } from '../../config/index.js';
import { CliError } from '../cli-error.js';

export function configCheckCommand(file: string | undefined): void {
  if (!file) throw new CliError('usage: gatehouse config check FILE');
  const config = loadConfig(file);
  const store = 'sqlite' in config.store ? `sqlite ${config.store.sqlite.path}` : 'postgres';
  process.stdout.write(`${file}: valid — ${config.connections.length} connection(s): ${config.connections.map((c) => `${c.name} (${c.type})`).join(', ') || 'none'}; store: ${store}\n`);
}
