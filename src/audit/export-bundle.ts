// Evidence export. A bundle is a directory an auditor can check with standard tools
// alone (README.md in the bundle says how):
//
//   events.jsonl       the chained events about the exported exchanges (all events when
//                      no filter is given; with --subject also what was done by and to
//                      that subject: subjectEvents), one canonical JSON object per line, seq order
//   exchanges.jsonl    the exported rows, one canonical JSON object per line; SHA-256 of
//                      a line (without its newline) is the `state` its latest event with one holds
//   exchanges.csv      the same rows for a spreadsheet
//   checkpoints.jsonl  the signed checkpoints in the exported range
//   public-key.pem     the Ed25519 public key (SPKI PEM)
//   manifest.sha256    `sha256sum` lines for every file above
//   manifest.sig       raw Ed25519 signature over manifest.sha256
//   README.md          how to verify

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, openSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { AuditEventRow, Database, ExchangeRow } from '../store/index.js';
import { eventFromRow } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { applyFilter, type ExchangeFilter } from './exchange-query.js';
import { stateOf } from './exchange-state.js';
import type { CheckpointSigner } from './signing-key.js';

export interface ExportResult {
  readonly exchanges: number;
  readonly events: number;
  readonly files: readonly string[];
}

const csvColumns = [
  'id', 'started_at', 'ended_at', 'connection', 'operation', 'subject', 'groups', 'decision', 'rules', 'reason', 'status', 'complete',
  'error_code', 'model', 'bytes_in', 'bytes_out', 'duration_ms', 'review_id', 'reexecution_of', 'prompt_text', 'response_text',
] as const;

function isEmptyFilter(filter: ExchangeFilter): boolean {
  return Object.values(filter).every((v) => v === undefined);
}

async function* filteredRows(db: Kysely<Database>, filter: ExchangeFilter): AsyncGenerator<ExchangeRow> {
  let after = -1;
  for (;;) {
    const rows = (await applyFilter(db, db.selectFrom('exchanges').selectAll(), { ...filter, before: undefined }).where('seq', '>', after).orderBy('seq').limit(500).execute()) as ExchangeRow[];
    if (rows.length === 0) return;
    after = Number(rows[rows.length - 1]!.seq);
    yield* rows;
  }
}

// An export holds prompts and answers, as the store does: created readable by its owner
// only (a directory that already exists, and files in it, keep their mode).
const privateFile = 0o600;
const privateDir = 0o700;

function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  // A cell a spreadsheet would run as a formula is neutralised (OWASP CSV injection).
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

function csvLine(row: ExchangeRow): string {
  return `${csvColumns.map((c) => csvCell(c === 'started_at' || c === 'ended_at' ? (row[c] === null ? null : new Date(Number(row[c])).toISOString()) : row[c])).join(',')}\r\n`;
}

/** Writes the exchanges matching `filter` as CSV (RFC 4180) to `path`. */
export async function exportCsv(db: Kysely<Database>, filter: ExchangeFilter, path: string): Promise<number> {
  const out = lineWriter(path);
  await out.write(`${csvColumns.join(',')}\r\n`);
  let count = 0;
  for await (const row of filteredRows(db, filter)) {
    await out.write(csvLine(row));
    count++;
  }
  await out.end();
  return count;
}

/**
 * A line-by-line file writer that honours backpressure. The file is opened at once, so a
 * path that cannot be written throws here (ENOENT, EACCES…), and a later write error
 * (ENOSPC) rejects the next write or the end: a stream's 'error' event without a listener
 * crashed the process with a stack.
 */
function lineWriter(path: string) {
  const out = createWriteStream(path, { fd: openSync(path, 'w', privateFile) });
  let failure: Error | undefined;
  out.on('error', (error) => (failure = error));
  return {
    async write(line: string) {
      if (failure) throw failure;
      if (!out.write(line)) await drained(out);
      if (failure) throw failure;
    },
    end: () => new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error || failure ? reject(error ?? failure) : resolve()))),
  };
}

/**
 * Waits for the stream to drain or fail, and takes both listeners off again: one left
 * behind per full buffer piled up on a large export (Node warned of a leak past ten).
 */
function drained(out: WriteStream): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('error', done);
      resolve();
    };
    out.once('drain', done);
    out.once('error', done);
  });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function exportBundle(db: Kysely<Database>, filter: ExchangeFilter, dir: string, signer: CheckpointSigner): Promise<ExportResult> {
  mkdirSync(dir, { recursive: true, mode: privateDir });
  // Rows and events are streamed to the files page by page; only the exported ids are
  // held, to pick their events out of the chain in seq order.
  const ids = new Set<string>();
  // Rows written: `ids` also holds the reviews that travel with them, which are not exchanges.
  let exchangeCount = 0;
  const exchanges = lineWriter(join(dir, 'exchanges.jsonl'));
  for await (const row of filteredRows(db, filter)) {
    await exchanges.write(`${canonicalJson(stateOf(row))}\n`);
    exchangeCount++;
    ids.add(row.id);
    // The review that governed an exchange travels with it: its creation and votes.
    if (row.review_id) ids.add(`review:${row.review_id}`);
  }
  await exchanges.end();
  const all = isEmptyFilter(filter);
  const aboutSubject = filter.subject === undefined ? undefined : await subjectEvents(db, filter.subject);
  const events = lineWriter(join(dir, 'events.jsonl'));
  let eventCount = 0;
  let first = 0;
  let last = 0;
  for (let after = -1; ; ) {
    const rows = (await db.selectFrom('audit_events').selectAll().where('seq', '>', after).orderBy('seq').limit(1000).execute()) as AuditEventRow[];
    if (rows.length === 0) break;
    after = Number(rows[rows.length - 1]!.seq);
    for (const row of rows) {
      if (!all && (row.target === null || !ids.has(row.target)) && !aboutSubject?.(row)) continue;
      await events.write(`${canonicalJson(eventFromRow(row))}\n`);
      eventCount++;
      first ||= Number(row.seq);
      last = Number(row.seq);
    }
  }
  await events.end();
  // From the checkpoint at first - 1 on: after a prune, the chain starts at that checkpoint
  // (its signed hash is the first event's prevHash), and without it the bundle had none.
  // No event exported: no checkpoint vouches for anything in the bundle.
  const checkpoints = first === 0 ? [] : await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>=', first - 1).orderBy('seq').execute();
  const checkpointLines = checkpoints.map((c) => `${canonicalJson({ seq: Number(c.seq), hash: c.hash, at: Number(c.at), keyId: c.key_id, signature: c.signature })}\n`);

  const csvPath = join(dir, 'exchanges.csv');
  await exportCsv(db, filter, csvPath);
  const files: Record<string, string> = {
    'checkpoints.jsonl': checkpointLines.join(''),
    'public-key.pem': signer.publicKeyPem,
    'README.md': readme({ exchanges: exchangeCount, events: eventCount, first, last, keyId: signer.keyId, filter }),
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: privateFile });
  const names = ['events.jsonl', 'exchanges.jsonl', 'exchanges.csv', 'checkpoints.jsonl', 'public-key.pem', 'README.md'];
  // `sha256sum` format: hex digest, two spaces, file name.
  const digests = await Promise.all(names.map((name) => sha256File(join(dir, name))));
  const manifest = names.map((name, i) => `${digests[i]}  ${name}\n`).join('');
  writeFileSync(join(dir, 'manifest.sha256'), manifest, { mode: privateFile });
  writeFileSync(join(dir, 'manifest.sig'), Buffer.from(signer.sign(manifest), 'base64'), { mode: privateFile });
  return { exchanges: exchangeCount, events: eventCount, files: [...names, 'manifest.sha256', 'manifest.sig'] };
}

/**
 * A bundle filtered by subject is the evidence about one identity: besides its exchanges'
 * events, what it did (events whose actor it is: refused credentials that proved to be
 * its own, alerts, reveals, tokens issued) and what was done to it — its keys created,
 * rotated and revoked, revocations naming it or its keys, and their lifts. So an auditor
 * sees the containment (when the key was revoked) beside the use, in one signed bundle.
 */
async function subjectEvents(db: Kysely<Database>, subject: string): Promise<(row: AuditEventRow) => boolean> {
  const named = new Set([subject]);
  if (subject.startsWith('key:')) for (const key of await db.selectFrom('api_keys').select('id').where('name', '=', subject.slice(4)).execute()) named.add(key.id);
  const targets = new Set([...named].filter((v) => v !== subject).map((id) => `key:${id}`));
  return (row) => {
    if (row.actor === subject || (row.target !== null && targets.has(row.target))) return true;
    if (row.kind !== 'revocation.created' || row.target === null) return false;
    const value = (JSON.parse(row.details) as { value?: unknown }).value;
    if (typeof value !== 'string' || !named.has(value)) return false;
    targets.add(row.target); // its lift too, chained later
    return true;
  };
}

function readme(info: { exchanges: number; events: number; first: number; last: number; keyId: string; filter: ExchangeFilter }): string {
  return `# Gatehouse evidence bundle

Exported ${new Date().toISOString()}: ${info.exchanges} exchanges, ${info.events} events (seq ${info.first}..${info.last}).
Filter: ${canonicalJson(info.filter)}
Signing key id: ${info.keyId}

## Verify with standard tools

1. Every file is listed with its SHA-256 in manifest.sha256:

       sha256sum -c manifest.sha256

2. manifest.sha256 is signed with the Ed25519 key in public-key.pem (OpenSSL 3):

       openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in manifest.sha256 -sigfile manifest.sig

   Compare the key with the one your organisation recorded for this gateway
   (its id is the first 16 hex digits of SHA-256 over the key's DER form:
   \`openssl pkey -pubin -in public-key.pem -outform DER | sha256sum\`).

3. Each line of events.jsonl is one event in canonical JSON (RFC 8785: sorted keys, no
   whitespace). Its \`hash\` is SHA-256 over the same object without \`hash\`, and its
   \`prevHash\` is the hash of the event with the previous seq (in the bundle when it was
   exported without filters; a filtered bundle holds only the events about its exchanges
   (and, filtered by subject, what that subject did and what was done to it: its keys
   created and revoked, revocations naming it), so its seqs have gaps: check those links against the gateway's store with
   \`gatehouse audit verify\`). Every event at once with Python 3, printing each seq
   with ok or MISMATCH:

       python3 -c 'import json,hashlib;[print(e["seq"],"ok" if e.pop("hash")==hashlib.sha256(json.dumps(e,sort_keys=True,separators=(",",":"),ensure_ascii=False).encode("utf-8","backslashreplace")).hexdigest() else "MISMATCH") for e in map(json.loads,open("events.jsonl",encoding="utf-8"))]'

   or one event with jq (jq writes the character U+007F, DEL, as \`\\u007f\`, which the
   canonical form does not escape, and replaces an unpaired surrogate, which it escapes:
   for an event whose text holds one, such as a revocation's reason, jq gives another
   hash; the Python line is exact):

       jq -cS 'del(.hash)' events.jsonl | head -n1 | tr -d '\\n' | sha256sum

4. Each line of exchanges.jsonl is a recorded exchange in canonical JSON; SHA-256 of the
   line (without its newline) equals \`details.state\` of the latest event whose
   \`target\` is that exchange's id and that has a state (a later exchange.revealed or
   exchange.reexecuted event has none):

       head -n1 exchanges.jsonl | tr -d '\\n' | sha256sum
       jq -r --arg id "$(head -n1 exchanges.jsonl | jq -r .id)" 'select(.target == $id and .details.state != null) | .details.state' events.jsonl | tail -n1

5. checkpoints.jsonl holds signed chain heads: the signature (base64) is over
   \`{"at":…,"hash":"…","seq":…}\` (canonical JSON) with the same key, and its \`hash\`
   is the hash of the event at its \`seq\`. The first one, with jq and OpenSSL 3:

       head -n1 checkpoints.jsonl | jq -cS '{at,hash,seq}' | tr -d '\\n' > checkpoint.json
       head -n1 checkpoints.jsonl | jq -r .signature | base64 -d > checkpoint.sig
       openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in checkpoint.json -sigfile checkpoint.sig

See docs/audit.md in the Gatehouse repository for the full description.
`;
}
