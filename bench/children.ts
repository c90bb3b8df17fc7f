// Benchmark helper: child processes and temp dirs that are always cleaned up — on
// success, on error, on SIGINT / SIGTERM, and (best effort, synchronously) on exit.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';

const TAIL_BYTES = 8 * 1024;
/** Start-up lines are what benches wait for; later output is not kept. */
const MAX_LINES = 200;

export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  #stdoutTail = '';
  #stderrTail = '';
  #exitCode: number | null | undefined;
  #exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  /** Complete lines per stream (the first MAX_LINES kept), and who waits for the next one. */
  readonly #lines = {
    stdout: { partial: '', seen: [] as string[], waiters: new Set<(line: string) => void>() },
    stderr: { partial: '', seen: [] as string[], waiters: new Set<(line: string) => void>() },
  };

  constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.proc = proc;
    proc.stdout?.setEncoding('utf8');
    proc.stderr?.setEncoding('utf8');
    proc.stdout?.on('data', (s: string) => { this.#stdoutTail = (this.#stdoutTail + s).slice(-TAIL_BYTES); this.#collect('stdout', s); });
    proc.stderr?.on('data', (s: string) => { this.#stderrTail = (this.#stderrTail + s).slice(-TAIL_BYTES); this.#collect('stderr', s); });
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

  #collect(stream: 'stdout' | 'stderr', chunk: string): void {
    const lines = this.#lines[stream];
    lines.partial += chunk;
    let nl: number;
    while ((nl = lines.partial.indexOf('\n')) !== -1) {
      const line = lines.partial.slice(0, nl);
      lines.partial = lines.partial.slice(nl + 1);
      if (lines.seen.length < MAX_LINES) lines.seen.push(line);
      for (const waiter of [...lines.waiters]) waiter(line);
    }
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

  /**
   * Resolves with the first line matching `pattern` on the given stream, or rejects if
   * the child exits or time runs out. Lines that arrived before the call count too (the
   * child may print two awaited lines in one chunk, before the second wait begins).
   */
  waitForLine(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    if (!this.proc[stream]) return Promise.reject(new Error(`${this.name}: ${stream} is not piped`));
    const lines = this.#lines[stream];
    for (const line of lines.seen) {
      const match = pattern.exec(line);
      if (match) return Promise.resolve(match);
    }
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        lines.waiters.delete(onLine);
        this.proc.off('exit', onExit);
      };
      const onLine = (line: string) => {
        const match = pattern.exec(line);
        if (!match) return;
        cleanup();
        resolve(match);
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
      lines.waiters.add(onLine);
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
