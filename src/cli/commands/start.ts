import { PolicyError } from '../../policy/index.js';
import { startGateway, type Gateway } from '../../server/index.js';
import { CliError } from '../cli-error.js';
import { configPath } from '../config-path.js';
import { checkedConfig } from '../config-problems.js';

/** How long a stop signal while starting waits for the step under way (a store or IdP that does not answer) before the process exits anyway. */
const stopWhileStartingMs = 5_000;

export async function startCommand(options: { config?: string | undefined }): Promise<void> {
  // Until the gateway runs, a SIGHUP (a config tool reloading after writing the file)
  // would kill the process by its default action: remember it, and reload once started
  // (the file may have changed after it was read).
  let reloadAsked = false;
  const askReload = () => (reloadAsked = true);
  process.on('SIGHUP', askReload);
  // SIGTERM / SIGINT while starting would kill the process by their default action
  // (exit 143, no word): the start stops after the step under way, closes what it
  // opened, and the process exits 0 saying so. A step that does not end within
  // stopWhileStartingMs (a store that does not answer), or a second signal, exits at once.
  const stopping = new AbortController();
  const stopWhileStarting = (signal: NodeJS.Signals) => {
    if (stopping.signal.aborted) return exitNow(`gatehouse: ${signal} again while starting: exiting now\n`);
    process.stderr.write(`gatehouse: ${signal} while starting: stopping\n`);
    stopping.abort(new StoppedWhileStarting(signal));
    setTimeout(() => exitNow(`gatehouse: the start did not stop within ${stopWhileStartingMs / 1000} s: exiting now\n`), stopWhileStartingMs).unref();
  };
  process.on('SIGTERM', stopWhileStarting);
  process.on('SIGINT', stopWhileStarting);
  let gateway: Gateway;
  try {
    const file = configPath(options.config);
    // Every problem of the config at once, as `config check` lists them.
    const { config } = checkedConfig(file);
    try {
      gateway = await startGateway(config, { configFile: file, signal: stopping.signal });
    } catch (error) {
      if (stopping.signal.aborted) {
        process.stderr.write('gatehouse: stopped while starting\n');
        return;
      }
      if (error instanceof PolicyError) throw new CliError(`invalid policy in ${file}: ${error.message}`, 1);
      const listen = error as NodeJS.ErrnoException & { address?: string; port?: number };
      if (listen.syscall === 'listen' && listen.code !== undefined) {
        const why = listen.code === 'EADDRINUSE' ? 'the address is in use (another gateway?)' : listen.code === 'EACCES' ? 'permission denied' : listen.code;
        throw new CliError(`cannot listen on ${listen.address ?? '?'}:${listen.port ?? '?'}: ${why}`, 1);
      }
      throw error;
    }
    if (stopping.signal.aborted) {
      // The signal came as the last step ended: a normal stop, nothing was served. The
      // handlers stay on meanwhile: a second signal while this closes (a store that does
      // not take the last record) exits 0 at once instead of killing the process.
      await gateway.close();
      process.stderr.write('gatehouse: stopped while starting\n');
      return;
    }
  } finally {
    process.off('SIGTERM', stopWhileStarting);
    process.off('SIGINT', stopWhileStarting);
  }
  if (gateway.agentsUrl) process.stderr.write(`gatehouse: agent endpoint ${gateway.agentsUrl}\n`);
  process.stderr.write(`gatehouse: data plane ${gateway.dataPlaneUrl}${gateway.adminUrl ? `, admin ${gateway.adminUrl}` : ''}\n`);
  for (const [name, address] of gateway.postgresListeners) process.stderr.write(`gatehouse: postgres connection ${name} on ${address}\n`);
  // SIGHUP reloads the policy; a refused reload is logged and changes nothing.
  const reload = () => {
    try {
      gateway.policy.reload('signal:SIGHUP');
    } catch {
      // logged by the policy runtime
    }
  };
  process.on('SIGHUP', reload);
  process.off('SIGHUP', askReload);
  if (reloadAsked) reload();
  await untilSignal();
  process.off('SIGHUP', reload);
  // While stopping, a signal must not kill the process (the default action of each),
  // which would skip writing outstanding records: a second SIGTERM or SIGINT (Ctrl-C
  // twice) ends the grace period at once instead; a SIGHUP (logrotate, a config tool)
  // is ignored.
  const hurry = () => {
    gateway.logger.warn('second stop signal: cutting the exchanges still in flight now');
    gateway.endGracePeriod();
  };
  const ignoreReload = () => gateway.logger.warn('SIGHUP ignored: the gateway is stopping');
  process.on('SIGTERM', hurry);
  process.on('SIGINT', hurry);
  process.on('SIGHUP', ignoreReload);
  await gateway.close();
}

class StoppedWhileStarting extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`${signal} while starting`);
    this.name = 'StoppedWhileStarting';
  }
}

function exitNow(message: string): never {
  process.stderr.write(message);
  process.exit(0);
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
