// Starts the real `gatehouse` process (dist/, built by `npm test`) on 127.0.0.1 with a
// config written to a temp dir, and drives its CLI. Every test stops what it starts.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const gatehouseBin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const execFileAsync = promisify(execFile);
/** Generous: a loaded 2-core machine has taken over 15 s to start a gateway. */
const startTimeoutMs = 30_000;

export interface GatewayProcess {
  readonly url: string;
  readonly adminUrl: string;
  readonly dir: string;
  readonly configPath: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout (its logs). */
  logs(): string;
  /**
   * The logs once `pattern` matches them (at most `timeoutMs`; then the logs as they are,
   * for the assertion to show): a line comes through the process's stdout, a little after
   * the answer it goes with.
   */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Everything the process wrote to stderr (its start-up lines). */
  stderr(): string;
  createKey(name: string, groups: string[], extra?: string[]): Promise<string>;
  /** The port of the `type: postgres` connection `name`'s listener, as the start-up lines name it. */
  postgresPort(name: string): Promise<number>;
  cli(args: string[]): Promise<{ stdout: string; stderr: string }>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Writes `configYaml` (without a store section, one is added) and starts the gateway. */
export async function startGatewayProcess(configYaml: string, options: { env?: NodeJS.ProcessEnv; dir?: string; store?: string; nodeArgs?: readonly string[]; /** Another build's dist/cli/main.js (paired benches). */ bin?: string; /** A command the gateway runs under (e.g. `unshare` into a pid namespace of its own: another container's). */ wrap?: readonly string[] } = {}): Promise<GatewayProcess> {
  const bin = options.bin ?? gatehouseBin;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
  const configPath = join(dir, 'gatehouse.yaml');
  const store = options.store ?? `store:\n  sqlite: { path: ${join(dir, 'gatehouse.db')} }\n`;
  writeFileSync(configPath, `${configYaml}\n${store}`);
  const env = { ...process.env, ...options.env };
  const command = [...(options.wrap ?? []), process.execPath, ...(options.nodeArgs ?? []), bin, 'start', '--config', configPath];
  const child = spawn(command[0]!, command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const started = await new Promise<{ url: string; adminUrl: string }>((resolve, reject) => {
    // A gateway that missed the window is killed: left running, it kept the test file's
    // process alive and held its ports until someone found its pid.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start in ${startTimeoutMs / 1000} s:\n${stderr}\n${stdout}`));
    }, startTimeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const match = /data plane (\S+), admin (\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1]!, adminUrl: match[2]! });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${stderr}`));
    });
  });

  // --config goes before a "--" (after it every word is a value: a kid that starts with "-").
  const cli = async (args: string[]) => {
    const end = args.indexOf('--');
    const withConfig = end < 0 ? [...args, '--config', configPath] : [...args.slice(0, end), '--config', configPath, ...args.slice(end)];
    // (a listing of every record of a long test passes the default 1 MiB)
    return execFileAsync(process.execPath, [bin, ...withConfig], { env, maxBuffer: 64 * 1024 * 1024 });
  };
  return {
    ...started,
    dir,
    configPath,
    child,
    logs: () => stdout,
    async waitForLog(pattern, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(stdout) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      return stdout;
    },
    stderr: () => stderr,
    cli,
    async createKey(name, groups, extra = []) {
      const { stdout: out } = await cli(['keys', 'create', '--name', name, '--groups', groups.join(','), '--json', ...extra]);
      return (JSON.parse(out) as { token: string }).token;
    },
    async postgresPort(name) {
      // Written right after the data plane's line, perhaps in a later chunk.
      const line = new RegExp(`postgres connection ${name} on 127\\.0\\.0\\.1:(\\d+)`);
      for (let i = 0; i < 100; i++) {
        const match = line.exec(stderr);
        if (match) return Number(match[1]);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the gateway named no listener for postgres connection ${name}:\n${stderr}`);
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill(signal);
      const code = await exited;
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [gatehouseBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function demoConnectionYaml(upstreamUrl: string, extra = ''): string {
  return `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
connections:
  - name: demo
    type: openai
    target: ${upstreamUrl}
    credential:
      secret: \${UPSTREAM_KEY}
    access: { groups: [ml] }
${extra}`;
}
