// Long SQL texts are parsed on a worker thread of their own (parse-worker.ts). The
// parser (libpg-query, WASM) is synchronous: a text near limits.maxMessageBytes (a bulk
// INSERT, or a Query of thousands of statements) takes seconds to parse and describe,
// and on the event loop that stalled every session and every HTTP exchange of the
// gateway meanwhile. Short texts, the common case (about 0.1 ms), stay on the loop.
// If the thread fails, what it was asked is refused as unparseable (fail closed) and a
// new thread serves the next text. An idle thread is ended after a while: the parser's
// WASM memory grows to the largest text it has seen (hundreds of MiB after a 1 MiB
// statement) and is never given back otherwise.

import { Worker } from 'node:worker_threads';
import { workerScript } from '../../audit/worker-script.js';
import type { SqlInspection } from './inspect-sql.js';

export interface ParseResult {
  readonly inspection: SqlInspection;
  readonly readsLiterals: boolean;
}

let worker: Worker | undefined;
const waiting = new Map<number, (result: ParseResult) => void>();
let nextId = 0;
let idleTimer: NodeJS.Timeout | undefined;

/** The thread's state: how long it may stay idle before it is ended (its memory with it), and whether it runs. */
export const parseThread = {
  idleMs: 30_000,
  running: (): boolean => worker !== undefined,
};

export function parseOffThread(text: string): Promise<ParseResult> {
  clearTimeout(idleTimer);
  const w = worker ?? start();
  const id = ++nextId;
  return new Promise((resolve) => {
    // Referenced only while it owes an answer, so an idle thread never keeps the process alive.
    if (waiting.size === 0) w.ref();
    waiting.set(id, resolve);
    w.postMessage({ id, text });
  });
}

function start(): Worker {
  const w = new Worker(workerScript(import.meta.url, 'parse-worker'));
  w.unref();
  w.on('message', (message: { id: number; result: ParseResult }) => {
    const resolve = waiting.get(message.id);
    waiting.delete(message.id);
    if (waiting.size === 0) {
      w.unref();
      idleTimer = setTimeout(() => {
        if (worker === w && waiting.size === 0) {
          worker = undefined;
          void w.terminate();
        }
      }, parseThread.idleMs).unref();
    }
    resolve?.(message.result);
  });
  const fail = (why: string) => {
    if (worker !== w) return;
    worker = undefined;
    const owed = [...waiting.values()];
    waiting.clear();
    for (const resolve of owed) resolve({ inspection: { ok: false, error: `the SQL could not be inspected (${why})` }, readsLiterals: true });
  };
  w.on('error', (error) => fail(error.message));
  w.on('exit', (code) => fail(`parser thread exited with code ${code}`));
  worker = w;
  return w;
}
