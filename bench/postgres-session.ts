// `node --import tsx bench/postgres-session.ts`: the CPU one PostgreSQL statement costs
// the gateway's session code, in-process, without the kernel and without the machine's
// other load. PostgresSession runs as the listener runs it (policy compiled from a
// connection-access rule, a masking rule, row limit, statement timeout, metrics and a
// log at warn), between in-memory streams: a fake client that sends pgbench -S's
// statements closed-loop, and a fake database that answers each one as PostgreSQL does
// (RowDescription, DataRow, CommandComplete, ReadyForQuery), one event-loop turn later,
// as a socket would. A bare pipe between the same streams is the baseline (what the
// streams alone cost); the difference is what the session adds per statement.
//
// Options (environment): BENCH_SESSIONS (8), BENCH_STATEMENTS (200000 per mode),
// BENCH_MODES (simple,prepared), BENCH_RECORDER (off | null: a recorder that resolves
// at once but reads what it is given, as a real one does | journal: the relaying
// thread's half of the SQLite recorder, rows built and appended to a record journal in
// a temporary directory, one write(2) per turn; no worker applies it), BENCH_ONLY (below).
// Profile with `node --cpu-prof --import tsx bench/postgres-session.ts`.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { JournalWriter } from '../src/audit/journal/journal-writer.js';
import { recordColumns } from '../src/audit/record-columns.js';
import type { Recorder } from '../src/audit/recorder.js';
import { disabledRecorder } from '../src/audit/disabled-recorder.js';
import type { PipelineStages } from '../src/pipeline/index.js';
import { compilePolicy } from '../src/policy/index.js';
import { createLogger, createMetrics, exchangeLogFields } from '../src/observability/index.js';
import { cstring, int16, int32, message, readyForQuery } from '../src/protocols/postgres/codec.js';
import type { PostgresConnection } from '../src/protocols/postgres/connection.js';
import { FrameSource } from '../src/protocols/postgres/frame-source.js';
import type { UpstreamSession } from '../src/protocols/postgres/forward.js';
import { PostgresSession } from '../src/protocols/postgres/session.js';

const sessions = Number(process.env.BENCH_SESSIONS ?? 8);
const statements = Number(process.env.BENCH_STATEMENTS ?? 200_000);
const modes = (process.env.BENCH_MODES ?? 'simple,prepared').split(',');
const recorderKind = process.env.BENCH_RECORDER ?? 'off';

/** One end of an in-memory byte stream: what is written to it is delivered to `onWrite`. */
class Pipe extends Duplex {
  onWrite: (chunk: Buffer) => void = () => undefined;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    this.onWrite(chunk);
    done();
  }
}

// --- wire messages, as pgbench -S and PostgreSQL 15 send them ---
const select = (aid: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
const rowDescription = message('T', Buffer.concat([int16(1), cstring('abalance'), int32(16396), int16(3), int32(23), int16(4), int32(-1), int16(0)]));
const dataRow = (v: number) => {
  const value = Buffer.from(String(v));
  return message('D', Buffer.concat([int16(1), int32(value.length), value]));
};
const selectOne = message('C', cstring('SELECT 1'));
const ready = readyForQuery('I');
const queryMessage = (aid: number) => message('Q', cstring(select(aid)));
const parseMessage = message('P', Buffer.concat([cstring('P0_1'), cstring('SELECT abalance FROM pgbench_accounts WHERE aid = $1;'), int16(0)]));
const bindMessage = (aid: number) => {
  const value = Buffer.from(String(aid));
  return message('B', Buffer.concat([cstring(''), cstring('P0_1'), int16(0), int16(1), int32(value.length), value, int16(0)]));
};
const describePortal = message('D', Buffer.concat([Buffer.from('P'), cstring('')]));
const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
const sync = message('S');
const parseComplete = message('1');
const bindComplete = message('2');

/** Answers each batch of client messages one turn later, as the database would. */
function fakeDatabase(upstream: Pipe): void {
  upstream.onWrite = (chunk) => {
    const out: Buffer[] = [];
    for (let at = 0; at < chunk.length; ) {
      const type = String.fromCharCode(chunk[at]!);
      const length = chunk.readInt32BE(at + 1);
      if (type === 'Q') out.push(rowDescription, dataRow(at), selectOne, ready);
      else if (type === 'P') out.push(parseComplete);
      else if (type === 'B') out.push(bindComplete);
      else if (type === 'D') out.push(rowDescription);
      else if (type === 'E') out.push(dataRow(at), selectOne);
      else if (type === 'S') out.push(ready);
      at += 1 + length;
    }
    const answer = Buffer.concat(out);
    setImmediate(() => upstream.push(answer));
  };
}

/** A client running `count` transactions closed-loop; resolves when done. */
function fakeClient(client: Pipe, mode: string, count: number, deliver: (bytes: Buffer) => void): Promise<void> {
  let done = 0;
  let seed = 1;
  const next = () => {
    seed = (seed * 48271) % 2147483647;
    const aid = 1 + (seed % 100_000);
    deliver(mode === 'simple' ? queryMessage(aid) : Buffer.concat([bindMessage(aid), describePortal, execute, sync]));
  };
  return new Promise((resolve) => {
    let pending: Buffer = Buffer.alloc(0);
    client.onWrite = (chunk) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // A transaction ends with ReadyForQuery (the last message of an answer).
      while (pending.length >= 6 && pending.includes(ready)) {
        const end = pending.indexOf(ready) + ready.length;
        pending = pending.subarray(end);
        if (++done === count) return resolve();
        setImmediate(next);
      }
    };
    if (mode === 'prepared') deliver(Buffer.concat([parseMessage, sync]));
    else next();
  });
}

const connection: PostgresConnection = {
  name: 'bench',
  listen: { host: '127.0.0.1', port: 0 },
  serverTls: undefined,
  allowPlaintext: true,
  target: { host: '127.0.0.1', port: 5432, database: 'bench', user: 'postgres', password: '', tls: { mode: 'disable' }, connectTimeoutMs: 5000, maxMessageBytes: 1 << 20 },
  maxRows: 100_000,
  statementTimeoutMs: 30_000,
  maxMessageBytes: 1 << 20,
  masking: { columns: new Map([['email', 'redact']]) },
  loginTimeoutMs: 5000,
};

/** Reads what a real recorder reads, resolves at once. */
const nullRecorder: Recorder = {
  open: async (_e, _d, request) => void request.body,
  progress: async () => undefined,
  finish: async (_e, outcome) => void outcome.responseBody,
  refuse: async () => undefined,
  drain: async () => undefined,
};

/** What journal-recorder.ts does on the relaying thread: the row built, one JSON line appended; the write(2) per turn. */
function journalRecorder(dir: string): Recorder {
  const journal = new JournalWriter(dir);
  const columns = recordColumns();
  return {
    open: (exchange, decision, request) => journal.append({ op: 'open', row: columns.opened(exchange, decision, request) }),
    progress: async () => undefined,
    finish: (exchange, outcome) => journal.append({ op: 'finish', id: exchange.id, columns: columns.outcome(exchange, outcome) }),
    refuse: (exchange, decision, request, outcome) => journal.append({ op: 'refuse', row: { ...columns.opened(exchange, decision, request), ...columns.outcome(exchange, outcome) } }),
    drain: async () => undefined,
  };
}

let journals = 0;
const journalDir = recorderKind === 'journal' ? mkdtempSync(join(tmpdir(), 'bench-pg-journal-')) : undefined;
process.on('exit', () => journalDir && rmSync(journalDir, { recursive: true, force: true }));

function stages(): PipelineStages {
  const metrics = createMetrics();
  const logger = createLogger('warn');
  return {
    identify: async () => {
      throw new Error('not used');
    },
    policy: compilePolicy([{ connection: 'bench', groups: ['bench'] }]),
    recorder: recorderKind === 'null' ? nullRecorder : journalDir ? journalRecorder(join(journalDir, String(++journals))) : disabledRecorder,
    observe(exchange, decision, outcome) {
      metrics.observeExchange(exchange, decision, outcome);
      if (outcome.errorCode === 'internal_error' || outcome.errorCode === 'recording_failed') logger.error(exchangeLogFields(exchange, decision, outcome), 'exchange failed');
      else if (logger.isLevelEnabled('info')) logger.info(exchangeLogFields(exchange, decision, outcome), 'exchange');
    },
  };
}

async function runMode(mode: string, withSession: boolean): Promise<number> {
  const shared = stages();
  const perSession = Math.ceil(statements / sessions);
  const clientsDone: Promise<void>[] = [];
  const ends: Array<() => void> = [];
  const start = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < sessions; i++) {
    const gatewayClient = new Pipe(); // the gateway's client socket
    const upstreamSocket = new Pipe(); // the gateway's database socket
    fakeDatabase(upstreamSocket);
    if (withSession) {
      const upstream: UpstreamSession = { socket: upstreamSocket, source: new FrameSource(upstreamSocket, 1 << 20), parameterStatus: [], processId: 1, secretKey: 2, status: 'I', close: () => upstreamSocket.destroy() };
      const session = new PostgresSession(
        { connection, stages: shared, identity: { subject: 'key:bench', kind: 'service', groups: ['bench'], method: 'api_key', credentialId: 'k1' }, sessionId: `ss_${i}`, clientAddress: '127.0.0.1', userAgent: undefined, cancelUpstream: async () => undefined, shadowedFunctions: new Set() },
        gatewayClient,
        new FrameSource(gatewayClient, 1 << 20),
        upstream,
      );
      void session.run();
    } else {
      // Baseline: the same streams, bytes piped as they come.
      gatewayClient.on('data', (chunk: Buffer) => upstreamSocket.write(chunk));
      upstreamSocket.on('data', (chunk: Buffer) => gatewayClient.write(chunk));
    }
    clientsDone.push(fakeClient(gatewayClient, mode, perSession, (bytes) => gatewayClient.push(bytes)));
    ends.push(() => gatewayClient.push(message('X')));
  }
  await Promise.all(clientsDone);
  const used = process.cpuUsage(start);
  const seconds = (performance.now() - t0) / 1000;
  for (const end of ends) end();
  await new Promise((r) => setTimeout(r, 20));
  const total = perSession * sessions;
  const us = (used.user + used.system) / total;
  process.stdout.write(`${mode.padEnd(8)} ${withSession ? 'session ' : 'pipe    '} ${us.toFixed(2).padStart(7)} CPU µs/statement  ${(total / seconds).toFixed(0).padStart(7)} statements/s\n`);
  return us;
}

async function main(): Promise<void> {
  // BENCH_ONLY=session|pipe: one run of the first mode, nothing else (for `perf stat`:
  // the difference between two counts is the cost per statement, start-up excluded).
  const only = process.env.BENCH_ONLY;
  if (only) {
    await runMode(modes[0]!, only === 'session');
    return;
  }
  process.stdout.write(`${sessions} sessions, ${statements} statements per mode, recorder ${recorderKind}\n`);
  for (const mode of modes) {
    await runMode(mode, true); // warm-up (JIT)
    const pipe = await runMode(mode, false);
    const session = await runMode(mode, true);
    process.stdout.write(`${mode.padEnd(8)} the session adds ${(session - pipe).toFixed(2)} µs per statement\n`);
  }
}

await main();
