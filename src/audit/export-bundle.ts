// Evidence export. A bundle is a directory an auditor can check with standard tools
// alone (README.md in the bundle says how):
//
//   events.jsonl       the chained events about the exported exchanges (all events when
//                      no filter is given), one canonical JSON object per line, seq order
//   exchanges.jsonl    the exported rows, one canonical JSON object per line; SHA-256 of
//                      a line (without its newline) is the `state` its latest event holds
//   exchanges.csv      the same rows for a spreadsheet
//   checkpoints.jsonl  the signed checkpoints in the exported range
//   public-key.pem     the Ed25519 public key (SPKI PEM)
//   manifest.sha256    `sha256sum` lines for every file above
//   manifest.sig       raw Ed25519 signature over manifest.sha256
//   README.md          how to verify

import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { AuditEventRow, Database, ExchangeRow } from '../store/index.js';
import { eventFromRow } from './audit-event.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';
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
  const out = createWriteStream(path);
  out.write(`${csvColumns.join(',')}\r\n`);
  let count = 0;
  for await (const row of filteredRows(db, filter)) {
    if (!out.write(csvLine(row))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    count++;
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return count;
}

export async function exportBundle(db: Kysely<Database>, filter: ExchangeFilter, dir: string, signer: CheckpointSigner): Promise<ExportResult> {
  mkdirSync(dir, { recursive: true });
  const exchangeLines: string[] = [];
  const ids: string[] = [];
  for await (const row of filteredRows(db, filter)) {
    exchangeLines.push(`${canonicalJson(stateOf(row))}\n`);
    ids.push(row.id);
  }
  const eventRows: AuditEventRow[] = [];
  if (isEmptyFilter(filter)) {
    eventRows.push(...((await db.selectFrom('audit_events').selectAll().orderBy('seq').execute()) as AuditEventRow[]));
  } else {
    for (let i = 0; i < ids.length; i += 500) {
      eventRows.push(...((await db.selectFrom('audit_events').selectAll().where('target', 'in', ids.slice(i, i + 500)).execute()) as AuditEventRow[]));
    }
    eventRows.sort((a, b) => Number(a.seq) - Number(b.seq));
  }
  const eventLines = eventRows.map((row) => `${canonicalJson(eventFromRow(row))}\n`);
  const first = eventRows[0] ? Number(eventRows[0].seq) : 0;
  const last = eventRows.length ? Number(eventRows[eventRows.length - 1]!.seq) : 0;
  const checkpoints = await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>=', first).orderBy('seq').execute();
  const checkpointLines = checkpoints.map((c) => `${canonicalJson({ seq: Number(c.seq), hash: c.hash, at: Number(c.at), keyId: c.key_id, signature: c.signature })}\n`);

  const csvPath = join(dir, 'exchanges.csv');
  await exportCsv(db, filter, csvPath);
  const files: Record<string, string> = {
    'events.jsonl': eventLines.join(''),
    'exchanges.jsonl': exchangeLines.join(''),
    'checkpoints.jsonl': checkpointLines.join(''),
    'public-key.pem': signer.publicKeyPem,
    'README.md': readme({ exchanges: ids.length, events: eventRows.length, first, last, keyId: signer.keyId, filter }),
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const names = ['events.jsonl', 'exchanges.jsonl', 'exchanges.csv', 'checkpoints.jsonl', 'public-key.pem', 'README.md'];
  // `sha256sum` format: hex digest, two spaces, file name.
  const manifest = names.map((name) => `${sha256Hex(readFileSync(join(dir, name)))}  ${name}\n`).join('');
  writeFileSync(join(dir, 'manifest.sha256'), manifest);
  writeFileSync(join(dir, 'manifest.sig'), Buffer.from(signer.sign(manifest), 'base64'));
  return { exchanges: ids.length, events: eventRows.length, files: [...names, 'manifest.sha256', 'manifest.sig'] };
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
   \`prevHash\` is the hash of the event with the previous seq. With jq:

       jq -cS 'del(.hash)' events.jsonl | head -n1 | tr -d '\\n' | sha256sum

4. Each line of exchanges.jsonl is a recorded exchange in canonical JSON; SHA-256 of the
   line (without its newline) equals \`details.state\` of the latest event whose
   \`target\` is that exchange's id:

       head -n1 exchanges.jsonl | tr -d '\\n' | sha256sum

5. checkpoints.jsonl holds signed chain heads: the signature (base64) is over
   \`{"at":…,"hash":"…","seq":…}\` (canonical JSON) with the same key.

See docs/audit.md in the Gatehouse repository for the full description.
`;
}
