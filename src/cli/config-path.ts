import { existsSync } from 'node:fs';
import { CliError } from './cli-error.js';

/** --config FILE, else $GATEHOUSE_CONFIG, else ./gatehouse.yaml. */
export function configPath(flag: string | undefined): string {
  const path = flag ?? process.env['GATEHOUSE_CONFIG'] ?? 'gatehouse.yaml';
  if (!existsSync(path)) throw new CliError(`config file not found: ${path} (pass --config FILE or set GATEHOUSE_CONFIG)`);
  return path;
}
