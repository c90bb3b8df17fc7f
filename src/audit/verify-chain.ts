// `gatehouse audit verify`: walks the chain and says where it breaks.
//
// It checks, in order:
//   1. every checkpoint's Ed25519 signature, against the configured public key;
//   2. where to start: the first event (seq 1, prevHash = 64 zeros), or, when older
//      events were pruned, a valid checkpoint at the seq just before the first retained
//      event (or the checkpoint named by --from);
//   3. every event from there on, in seq order: no seq missing (deleted), its hash
//      recomputed from its content (edited), its prevHash equal to the previous event's
//      hash (reordered, inserted), and each checkpoint equal to the event it vouches for;
//   4. the head row agrees with the last event (events deleted from the end), and every
//      record journal segment the chain says was begun was applied, chained as missing,
//      or is still pending (verify-journal.ts); every key and revocation still says what
//      the chain says was done to it: no revocation undone, no key given other groups
//      or a longer life (verify-credentials.ts);
//   5. every exchange row still has the digest its latest event recorded (edited), every
//      opened exchange still has its row (deleted), no row lacks an event (inserted), and
//      the rows' seq order agrees with the order of the events that inserted them (moved);
//   6. the full-text search index still finds every row by its words (verify-search-index.ts).
// Memory stays bounded: events and rows are read in pages.

import { PostgresAdapter, type Kysely } from 'kysely';
import type { AuditEventRow, Database } from '../store/index.js';
import { eventFromRow, eventHash, genesisHash } from './audit-event.js';
import { recordedColumns, stateDigest } from './exchange-state.js';
import { exchangeEventKinds } from './record-columns.js';
import { checkpointPayload, keyIdOf, verifySignature } from './signing-key.js';
import { credentialsCheck } from './verify-credentials.js';
import { journalSegmentsCheck } from './verify-journal.js';
import { searchIndexCheck } from './verify-search-index.js';
import { createPublicKey } from 'node:crypto';

const stateKinds: ReadonlySet<string> = new Set(exchangeEventKinds);

export interface ChainProblem {
  /** The event where the chain breaks, when there is one to name. */
  readonly seq?: number | undefined;
  readonly eventId?: string | undefined;
  readonly exchangeId?: string | undefined;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Seq of the first and last event checked (0 when the chain is empty). */
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly events: number;
  readonly checkpoints: number;
  readonly exchanges: number;
  readonly problems: readonly ChainProblem[];
}

export interface VerifyOptions {
  /** PEM of the Ed25519 public key that signs checkpoints; without it signatures are not checked (reported). */
  readonly publicKeyPem?: string | undefined;
  /** Public keys of earlier signing keys (audit.previousPublicKeys, more --public-key): their checkpoints verify too. */
  readonly previousPublicKeyPems?: readonly string[] | undefined;
  /** Start at the checkpoint with this seq instead of the earliest retained event. */
  readonly fromCheckpoint?: number | undefined;
  readonly maxProblems?: number | undefined;
  /**
   * `audit.checkpoint.every`: with a public key, a longer run of events than this (plus
   * the largest batch) without a checkpoint means checkpoints were deleted, with the
   * head's record of the newest one rolled back (see checkpointGap).
   */
  readonly checkpointEvery?: number | undefined;
}

/**
 * How far past `every` a checkpoint may land: it is written at the end of the batch that
 * reaches the count, and a batch holds at most 512 journal lines (or 256 group-commit
 * writes) with an event each; twice that, for margin.
 */
const checkpointSlack = 1024;

const pageSize = 1000;

/**
 * Between pages: on SQLite every query is synchronous, so without a turn of the event loop
 * GET /api/audit/verify held a gateway's data plane for the whole verification (2 s for
 * 60,000 events); now it holds it for one page at most.
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Why `seq` cannot be a `--from` (`from` of GET /api/audit/verify): no checkpoint row is
 * at it. Undefined when there is one. A start that names no checkpoint is the caller's
 * mistake (a typo, a seq past the head), not a broken chain: it is refused as a usage
 * error rather than reported as a break.
 */
export async function fromCheckpointProblem(db: Kysely<Database>, seq: number): Promise<string | undefined> {
  if (await db.selectFrom('audit_checkpoints').select('seq').where('seq', '=', seq).executeTakeFirst()) return undefined;
  const newest = (await db.selectFrom('audit_checkpoints').select('seq').orderBy('seq', 'desc').limit(5).execute()).map((r) => Number(r.seq)).reverse();
  const where = newest.length === 0 ? 'there are no checkpoints yet' : `the newest are at seq ${newest.join(', ')}`;
  return `no checkpoint at seq ${seq} (${where}; one deleted is found by a verification without it)`;
}

export async function verifyChain(db: Kysely<Database>, options: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: ChainProblem[] = [];
  const maxProblems = options.maxProblems ?? 100;
  const report = (problem: ChainProblem) => {
    if (problems.length < maxProblems) problems.push(problem);
  };
  const keyId = options.publicKeyPem ? keyIdOf(createPublicKey(options.publicKeyPem)) : undefined;
  // Each trusted key by its id: a checkpoint names the key that signed it.
  const trusted = new Map<string, string>();
  if (options.publicKeyPem) for (const pem of [options.publicKeyPem, ...(options.previousPublicKeyPems ?? [])]) trusted.set(keyIdOf(createPublicKey(pem)), pem);

  // The head first: everything below is read up to it, so what is appended meanwhile (it
  // moves the head in the same transaction) is left to the next verification.
  const head = await db.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
  const headSeq = head ? Number(head.seq) : Number.MAX_SAFE_INTEGER;

  // 1. Checkpoints.
  const checkpointRows = await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
  const checkpoints = new Map<number, string>();
  for (const row of checkpointRows) {
    const checkpoint = { seq: Number(row.seq), hash: row.hash, at: Number(row.at) };
    if (!options.publicKeyPem) {
      checkpoints.set(checkpoint.seq, checkpoint.hash);
      continue;
    }
    const pem = trusted.get(row.key_id);
    if (pem === undefined) {
      const also = trusted.size > 1 ? ` or the ${trusted.size - 1} earlier one(s) trusted` : '';
      report({ seq: checkpoint.seq, message: `checkpoint at seq ${checkpoint.seq} is signed by key ${row.key_id}, not by the key it is verified with (${keyId}: audit.signingKey or keyFile, or --public-key)${also}; a key replaced before goes in audit.previousPublicKeys` });
    } else if (!verifySignature(pem, checkpointPayload(checkpoint), row.signature)) report({ seq: checkpoint.seq, message: `checkpoint at seq ${checkpoint.seq} has an invalid signature (edited)` });
    else checkpoints.set(checkpoint.seq, checkpoint.hash);
  }
  if (!options.publicKeyPem) report({ message: 'no public key: checkpoint signatures were not checked' });

  // 2. Where to start.
  const first = await db.selectFrom('audit_events').select(['seq', 'id']).orderBy('seq').limit(1).executeTakeFirst();
  let startSeq = 0;
  let prevHash = genesisHash;
  if (options.fromCheckpoint !== undefined) {
    const hash = checkpoints.get(options.fromCheckpoint);
    if (hash === undefined) return done(0, 0, 0, [{ seq: options.fromCheckpoint, message: `no valid checkpoint at seq ${options.fromCheckpoint}` }, ...problems]);
    startSeq = options.fromCheckpoint;
    prevHash = hash;
  } else if (first && Number(first.seq) > 1) {
    const hash = checkpoints.get(Number(first.seq) - 1);
    if (hash === undefined) {
      report({ seq: Number(first.seq) - 1, message: `events before seq ${first.seq} (${first.id}) are missing and no valid checkpoint vouches for seq ${Number(first.seq) - 1}: event seq ${Number(first.seq) - 1} was deleted` });
      startSeq = Number(first.seq) - 1;
      prevHash = '';
    } else {
      startSeq = Number(first.seq) - 1;
      prevHash = hash;
    }
  }

  // 3. The events, up to the head read first. A process appending while this runs moves
  // the head with its events (one transaction): reading on past it named those events
  // "appended outside the gateway" on any store whose verification outlasts an append.
  let expected = startSeq + 1;
  let count = 0;
  let lastSeq = startSeq;
  // A checkpoint vouches for everything before it, so without a check of their cadence
  // deleting the newest ones (and rolling the head's checkpoint_seq back) unfixed the
  // events they had fixed: rewritten consistently, the chain verified.
  const maxGap = options.publicKeyPem !== undefined && options.checkpointEvery !== undefined && Number.isFinite(options.checkpointEvery) ? options.checkpointEvery + checkpointSlack : undefined;
  let lastCheckpoint = startSeq;
  let gapReported = false;
  const segments = journalSegmentsCheck(db);
  const credentials = credentialsCheck(db);
  await walk(headSeq);
  // The head and the last event as they are now, read in that order: a concurrent append
  // moves both, so only what lies past the head now was not appended by a writer. Those
  // events are walked too (a forged one is named), with what was appended meanwhile.
  const now = head ? await currentHead(db) : undefined;
  if (now && now.lastSeq > now.headSeq) await walk(now.lastSeq);
  // A checkpoint past the head read first was written meanwhile, unless it is past the
  // head now too (the head moved back over a deleted tail).
  for (const [seq] of checkpoints) if (seq > lastSeq && seq > startSeq && (seq <= headSeq || (now !== undefined && seq > now.headSeq))) report({ seq, message: `checkpoint at seq ${seq} vouches for event seq ${seq}, which is missing (deleted)${count > 0 ? `: events after seq ${lastSeq} were deleted` : ''}` });

  async function walk(upTo: number): Promise<void> {
    for (;;) {
      const rows = (await db.selectFrom('audit_events').selectAll().where('seq', '>=', expected).where('seq', '<=', upTo).orderBy('seq').limit(pageSize).execute()) as AuditEventRow[];
      if (rows.length === 0) break;
      const opened: { id: string; seq: number; eventId: string }[] = [];
      for (const row of rows) {
        const seq = Number(row.seq);
        const event = eventFromRow(row);
        if (seq !== expected) {
          report({ seq: expected, message: `event seq ${expected}${seq - expected > 1 ? `..${seq - 1}` : ''} is missing (deleted): the chain breaks before event seq ${seq} (${row.id})` });
        } else if (prevHash !== '' && event.prevHash !== prevHash) {
          report({ seq, eventId: row.id, message: `event seq ${seq} (${row.id}) does not follow event seq ${seq - 1}: prev_hash differs (reordered or inserted)` });
        }
        const { hash: _stored, ...unhashed } = event;
        if (eventHash(unhashed) !== row.hash) report({ seq, eventId: row.id, message: `event seq ${seq} (${row.id}) was altered: its hash does not match its content` });
        const vouched = checkpoints.get(seq);
        if (vouched !== undefined && vouched !== row.hash) report({ seq, eventId: row.id, message: `checkpoint at seq ${seq} does not match event seq ${seq} (${row.id})` });
        // Every event carrying a row's digest vouches for a row that must exist (an exchange
        // opened and finished in one journal batch has only exchange.finished). A reveal or
        // re-execution only names it: after a prune the row may rightly be gone.
        if (stateKinds.has(event.kind) && event.target) opened.push({ id: event.target, seq, eventId: row.id });
        segments.see(event);
        credentials.see(event);
        if (checkpoints.has(seq)) {
          lastCheckpoint = seq;
          gapReported = false;
        } else if (maxGap !== undefined && seq - lastCheckpoint > maxGap && !gapReported) {
          gapReported = true;
          report({ seq, eventId: row.id, message: checkpointGap(lastCheckpoint, seq, options.checkpointEvery!) });
        }
        prevHash = row.hash;
        expected = seq + 1;
        lastSeq = seq;
        count++;
      }
      if (opened.length > 0) {
        const present = new Set((await db.selectFrom('exchanges').select('id').where('id', 'in', [...new Set(opened.map((o) => o.id))]).execute()).map((r) => r.id));
        const reported = new Set<string>();
        for (const o of opened) if (!present.has(o.id) && !reported.has(o.id) && reported.add(o.id)) report({ seq: o.seq, eventId: o.eventId, exchangeId: o.id, message: `exchange ${o.id}, recorded by event seq ${o.seq} (${o.eventId}), has been deleted` });
      }
      await yieldToEventLoop();
    }
  }

  // 4. The head. Migrations create its row and nothing deletes it: without it, events
  // deleted from the end went unnoticed.
  if (!head) report({ seq: lastSeq + 1, message: `the head row (audit_head) is missing (deleted): events after seq ${lastSeq} may have been deleted` });
  // It records the newest checkpoint, which prune never deletes: without
  // this, deleting that checkpoint row (the one that fixes the chain up to it) passed.
  if (head && Number(head.checkpoint_seq) > 0 && !checkpointRows.some((row) => Number(row.seq) === Number(head.checkpoint_seq)))
    report({ seq: Number(head.checkpoint_seq), message: `checkpoint at seq ${head.checkpoint_seq} is missing (deleted): the head records it as the newest checkpoint` });
  // Events beyond the head as it is now (read after them) did not move it: appended outside.
  if (now && now.lastSeq > now.headSeq) report({ seq: now.headSeq + 1, message: `events after seq ${now.headSeq} were appended outside the gateway: the head records seq ${now.headSeq}, the chain goes on to seq ${now.lastSeq}` });
  if (head && Number(head.seq) > lastSeq && count + startSeq > 0) report({ seq: lastSeq + 1, message: `the chain ends at seq ${lastSeq} but the head records seq ${head.seq}: events after seq ${lastSeq} were deleted` });
  // No event at all while the head has moved: every event was deleted. Before the first
  // checkpoint only the head says so, and this passed as "events 0..0".
  else if (head && Number(head.seq) > lastSeq) report({ seq: 1, message: `every event was deleted: the head records seq ${head.seq}, the chain is empty` });
  else if (head && Number(head.seq) === lastSeq && lastSeq > 0 && head.hash !== prevHash) report({ seq: lastSeq, message: `the head's hash differs from event seq ${lastSeq}` });

  for (const problem of await segments.finish(lastSeq)) report(problem);
  for (const problem of await credentials.finish(lastSeq)) report(problem);

  // 5. The exchange rows against their latest events, and 6. the search index.
  // The order of the rows too: `seq` is not in the digest (it is allocated by the insert),
  // but the event of a write that inserted a row says so (`inserted`), and the row's seq
  // was taken in the transaction that chained it, under the head's lock. So a row listed
  // after a row inserted by event seq S was first recorded after S: a row whose first
  // recorded state is older had its seq changed (two rows' seqs swapped reorders
  // `sessions list`). Rows whose inserting event carries no mark (written by an earlier
  // build, or pruned) are only checked against marked rows before them; except on SQLite,
  // where every build inserted a row and chained its event in one transaction, in order,
  // under the write lock: there an exchange.opened or .refused (only ever chained by the
  // write that inserts the row) is an inserting event, marked or not. On PostgreSQL
  // earlier builds took a row's seq before the chain's lock: unmarked rows may rightly
  // be in another order.
  const unmarkedInserts = !(db.getExecutor().adapter instanceof PostgresAdapter);
  let newestInsert: { seq: number; id: string; rowSeq: number } | undefined;
  let outOfOrder = 0;
  const maxOrderProblems = 20;
  const checkOrder = (id: string, rowSeq: number, recorded: { seq: number; inserted: boolean } | undefined) => {
    if (recorded === undefined) return;
    if (newestInsert !== undefined && recorded.seq < newestInsert.seq) {
      if (++outOfOrder <= maxOrderProblems)
        report({ seq: recorded.seq, exchangeId: id, message: `exchange ${id} (seq ${rowSeq}, first recorded by event seq ${recorded.seq}) is listed after exchange ${newestInsert.id} (seq ${newestInsert.rowSeq}, inserted by event seq ${newestInsert.seq}): the exchanges' seq (their order) was changed` });
    }
    if (recorded.inserted && (newestInsert === undefined || recorded.seq > newestInsert.seq)) newestInsert = { seq: recorded.seq, id, rowSeq };
  };
  let exchanges = 0;
  let after = -1;
  const searchIndex = searchIndexCheck(db);
  for (;;) {
    const rows = await db.selectFrom('exchanges').select(['seq', ...recordedColumns]).where('seq', '>', after).orderBy('seq').limit(500).execute();
    if (rows.length === 0) break;
    after = Number(rows[rows.length - 1]!.seq);
    const events = await db
      .selectFrom('audit_events')
      .select(['seq', 'id', 'kind', 'target', 'details'])
      .where('target', 'in', rows.map((r) => r.id))
      .where('kind', 'like', 'exchange.%')
      .orderBy('seq')
      .execute();
    const latest = new Map<string, { seq: number; id: string; state: unknown }>();
    /** Each row's first event with a state, and whether that event inserted it. */
    const first = new Map<string, { seq: number; inserted: boolean }>();
    // States a row may show when it was written while this ran: its latest as of the head
    // read at the start, and every one written since (the row was read before its events).
    const inFlight = new Map<string, unknown[]>();
    for (const e of events) {
      const details = JSON.parse(e.details) as { state?: unknown; inserted?: unknown };
      const state = details.state;
      if (state === undefined) continue;
      const seq = Number(e.seq);
      if (!first.has(e.target!)) first.set(e.target!, { seq, inserted: details.inserted === true || (unmarkedInserts && (e.kind === 'exchange.opened' || e.kind === 'exchange.refused')) });
      if (seq > headSeq) inFlight.set(e.target!, [...(inFlight.get(e.target!) ?? [latest.get(e.target!)?.state]), state]);
      latest.set(e.target!, { seq, id: e.id, state });
    }
    for (const row of rows) {
      exchanges++;
      const event = latest.get(row.id);
      const digest = stateDigest(row);
      if (!event) report({ exchangeId: row.id, message: `exchange ${row.id} has no audit event: inserted outside the gateway, or its events were deleted` });
      else if (event.state !== digest && !inFlight.get(row.id)?.includes(digest)) report({ seq: event.seq, eventId: event.id, exchangeId: row.id, message: `exchange ${row.id} was altered after event seq ${event.seq} (${event.id}) recorded it` });
      checkOrder(row.id, Number(row.seq), first.get(row.id));
    }
    for (const problem of await searchIndex.page(rows.map((r) => ({ seq: Number(r.seq), id: r.id })))) report(problem);
    await yieldToEventLoop();
  }
  for (const problem of await searchIndex.finish()) report(problem);
  if (outOfOrder > maxOrderProblems) report({ message: `${outOfOrder - maxOrderProblems} more exchanges are listed out of the order they were recorded in` });
  return done(startSeq + (count > 0 ? 1 : 0), lastSeq, count, problems, exchanges);

  /** The last event's seq, then the head's: in that order, an append between the two reads cannot put the last event past the head. */
  async function currentHead(store: Kysely<Database>): Promise<{ headSeq: number; lastSeq: number } | undefined> {
    const last = await store.selectFrom('audit_events').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
    const row = await store.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirst();
    return row ? { headSeq: Number(row.seq), lastSeq: last ? Number(last.seq) : 0 } : undefined;
  }

  function checkpointGap(from: number, seq: number, every: number): string {
    return `event seq ${seq} is more than ${every + checkpointSlack} events past ${from === 0 ? 'the start of the chain' : `the checkpoint at seq ${from}`} with no checkpoint between (audit.checkpoint.every is ${every}): checkpoints were deleted, or every was larger when these events were appended`;
  }

    function done(fromSeq: number, toSeq: number, events: number, list: ChainProblem[], exchangeCount = 0): VerifyReport {
    const real = list.filter((p) => p.message !== 'no public key: checkpoint signatures were not checked');
    return { ok: real.length === 0, fromSeq, toSeq, events, checkpoints: checkpoints.size, exchanges: exchangeCount, problems: list };
  }
}
