// `npm start`: the demo upstream, the gateway with examples/quickstart.yaml, and a fresh
// demo key, with copy-paste examples. Everything runs on 127.0.0.1.

import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/index.js';
import { startDemoUpstream } from '../../demo/upstream.js';
import { keyCreatedEvent } from '../../identity/index.js';
import { startGateway } from '../../server/index.js';
import { CliError } from '../cli-error.js';
import { untilSignal } from './start.js';

const demoKeyName = 'quickstart-demo';

/**
 * `--port N` (`npm start -- --port N`): the data plane on N, the admin API on N+1 and the
 * demo upstream on N+10, for a machine where 8080, 8081 or 8090 is taken.
 */
export async function quickstartCommand(values: { port?: string | undefined } = {}): Promise<void> {
  const basePort = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(basePort) || basePort < 1 || basePort > 65525) throw new CliError(`--port must be a port number from 1 to 65525 (the admin API takes the next one, the demo upstream the port 10 above), not "${values.port}"`);
  const ports = { data: basePort, admin: basePort + 1, upstream: basePort + 10 };
  const configFile = fileURLToPath(new URL('../../../examples/quickstart.yaml', import.meta.url));
  const upstreamKey = `demo-upstream-${randomBytes(12).toString('hex')}`;
  const loaded = loadConfig(configFile, { ...process.env, GATEHOUSE_DEMO_UPSTREAM_KEY: upstreamKey });
  const config: typeof loaded =
    basePort === 8080
      ? loaded
      : {
          ...loaded,
          gateway: { ...loaded.gateway, listen: { ...loaded.gateway.listen, port: ports.data } },
          admin: { ...loaded.admin, listen: { ...loaded.admin.listen, port: ports.admin } },
          connections: loaded.connections.map((c) => (c.name === 'demo' && c.type === 'openai' ? { ...c, target: `http://127.0.0.1:${ports.upstream}/v1` } : c)),
        };

  const upstream = await startDemoUpstream({ host: '127.0.0.1', port: ports.upstream, apiKey: upstreamKey, streamDelayMs: 30 }).catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot start the demo upstream on 127.0.0.1:${ports.upstream}: ${error.code ?? error.message} (another quick start? stop it: two cannot share the quick start's store; another program? \`npm start -- --port N\` uses N, N+1 and N+10)`, 1);
  });
  const gateway = await startGateway(config).catch(async (error: NodeJS.ErrnoException & { port?: number }) => {
    await upstream.close();
    // The listen error names its port: say which one is taken, as the README promises.
    const taken = error.port ?? `${ports.data} or ${ports.admin}`;
    throw new CliError(`cannot start the gateway: ${error.code === 'EADDRINUSE' ? `port ${taken} is in use (\`npm start -- --port N\` uses N, N+1 and N+10)` : error.message}`, 1);
  });

  // A fresh demo key each run; the previous one is revoked. Both acts are chained, in the
  // transaction that makes them, as `gatehouse keys` chains its own.
  const { token } = await gateway.audit.log.change(async (trx, emit) => {
    for (const old of await gateway.apiKeys.revokeAll(demoKeyName, trx)) emit({ kind: 'key.revoked', actor: 'gatehouse', target: `key:${old.id}`, details: { name: old.name } });
    const created = await gateway.apiKeys.create({ name: demoKeyName, kind: 'service', groups: ['demo-users', 'gatehouse-admins'], expiresAt: Date.now() + 24 * 3_600_000 }, trx);
    const { key } = created;
    emit(keyCreatedEvent('gatehouse', key));
    return created;
  });

  const base = `${gateway.dataPlaneUrl}/c/demo`;
  process.stdout.write(`
Gatehouse quick start is running.

  data plane   ${gateway.dataPlaneUrl}      (connection "demo" at ${base})
  admin API    ${gateway.adminUrl}      (OpenAPI at ${gateway.adminUrl}/api/openapi.json)
  upstream     ${upstream.url}   DEMO upstream: speaks the OpenAI wire format, is not a model
  config       ${configFile}
  demo key     ${token}
               (groups demo-users, gatehouse-admins; valid 24 h; a new one each start)

Try it:

  curl -s ${base}/chat/completions \\
    -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" \\
    -d '{"model":"demo-chat","messages":[{"role":"user","content":"Hello"}]}'

  curl -sN ${base}/chat/completions \\
    -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" \\
    -d '{"model":"demo-chat","stream":true,"messages":[{"role":"user","content":"Stream me a few words"}]}'

  # with the openai SDK: new OpenAI({ baseURL: "${base}", apiKey: "<demo key>" })

See what was recorded:

  curl -s ${gateway.adminUrl}/api/sessions -H "Authorization: Bearer ${token}"
  npx gatehouse sessions list --config examples/quickstart.yaml

Ctrl-C stops it.
`);
  await untilSignal();
  await gateway.close();
  await upstream.close();
}
