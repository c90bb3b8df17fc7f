import { loadConfig } from '../../config/index.js';
import { startGateway } from '../../server/index.js';
import { configPath } from '../config-path.js';

export async function startCommand(options: { config?: string | undefined }): Promise<void> {
  const config = loadConfig(configPath(options.config));
  const gateway = await startGateway(config);
  if (gateway.agentsUrl) process.stderr.write(`gatehouse: agent endpoint ${gateway.agentsUrl}\n`);
  process.stderr.write(`gatehouse: data plane ${gateway.dataPlaneUrl}${gateway.adminUrl ? `, admin ${gateway.adminUrl}` : ''}\n`);
  await untilSignal();
  await gateway.close();
}

export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
