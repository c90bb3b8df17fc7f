// Benchmark helper: child processes and temp dirs that are always cleaned up — on
// success, on error, on SIGINT / SIGTERM, and (best effort, synchronously) on exit.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';

const TAIL_BYTES = 8 * 1024;

export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  #stdoutTail = '';
  #stderrTail = '';
  #exitCode: number | null | undefined;
  #exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;

  constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.proc = proc;
    proc.stdout?.setEncoding('utf8');
    proc.stderr?.setEncoding('utf8');
    proc.stdout?.on('data', (s: string) => { this.#stdoutTail = (this.#stdoutTail + s).slice(-TAIL_BYTES); });
    proc.stderr?.on('data', (s: string) => { this.#stderrTail = (this.#stderrTail + s).slice(-TAIL_BYTES); });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#exitCode = code;
        this.#exitSignal = signal;
        live.delete(this);
        resolve();
      });
      proc.once('error', () => {
        if (this.#exitCode === undefined) this.#exitCode = null;
        live.delete(this);
        resolve();
      });
    });
    live.add(this);
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  describeExit(): string {
    return this.#exitSignal ? `signal ${this.#exitSignal}` : `code ${this.#exitCode}`;
  }

  /** Last few KiB of stdout and stderr, for error messages. */
  output(): string {
    const parts: string[] = [];
    if (this.#stdoutTail.trim()) parts.push(`--- ${this.name} stdout (tail) ---\n${this.#stdoutTail.trimEnd()}`);
    if (this.#stderrTail.trim()) parts.push(`--- ${this.name} stderr (tail) ---\n${this.#stderrTail.trimEnd()}`);
    return parts.join('\n');
  }

  /** Resolves with the first line matching `pattern` on the given stream, or rejects if the child exits or time runs out. */
  waitForLine(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const source = this.proc[stream];
    if (!source) return Promise.reject(new Error(`${this.name}: ${stream} is not piped`));
    return new Promise((resolve, reject) => {
      let buffer = '';
      const cleanup = () => {
        clearTimeout(timer);
        source.off('data', onData);
        this.proc.off('exit', onExit);
      };
      const onData = (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          const match = pattern.exec(line);
          if (match) {
            cleanup();
            resolve(match);
            return;
          }
        }
      };
      const onExit = () => {
        cleanup();
        // Let the tail buffers catch the last output before reporting.
        setImmediate(() => reject(new Error(`${this.name} exited (${this.describeExit()}) before it was ready\n${this.output()}`)));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name} was not ready within ${timeoutMs} ms\n${this.output()}`));
      }, timeoutMs);
      source.on('data', onData);
      this.proc.once('exit', onExit);
      if (!this.running) onExit();
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.running) this.proc.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
  }
}

const live = new Set<Child>();
const tempDirs = new Set<string>();

export function spawnChild(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Child {
  const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  return new Child(name, proc);
}

export function registerTempDir(dir: string): void {
  tempDirs.add(dir);
}

/** Stops every live child (in parallel) and removes every temp dir. Safe to call twice. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop().catch(() => undefined)));
  for (const dir of [...tempDirs]) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    tempDirs.delete(dir);
  }
}

/** Last resort on process exit: no awaiting possible, so SIGKILL and rmSync. */
export function cleanupSync(): void {
  for (const c of live) {
    try { c.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of tempDirs) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  tempDirs.clear();
}
