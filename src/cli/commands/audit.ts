// `gatehouse audit verify|prune|export|alerts`: check the chain, apply retention, export
// evidence, list the alerts raised. See docs/audit.md.

import { exportBundle, exportCsv, pruneBefore, PruneOverBreakError, fromCheckpointProblem, readEd25519PublicKey, verifyChain } from '../../audit/index.js';
import { CliError } from '../cli-error.js';
import { alertsCommand } from './audit-alerts.js';
import { cliActor, withAuditTrail } from '../with-audit.js';
import { filterFromOptions, type SearchOptions } from './search-options.js';
import { hintUnmatchedFilters } from './search-hints.js';
import { parseIsoTime } from '../../config/units.js';

export interface AuditOptions extends SearchOptions {
  readonly config?: string | undefined;
  readonly from?: string | undefined;
  readonly 'public-key'?: string | undefined;
  readonly before?: string | undefined;
  readonly out?: string | undefined;
  readonly json?: boolean | undefined;
  readonly limit?: string | undefined;
  readonly force?: boolean | undefined;
}

export async function auditCommand(action: string | undefined, options: AuditOptions): Promise<void> {
  await withAuditTrail(options.config, async (store, audit, config) => {
    const checkpointEvery = config.audit.checkpoint.every;
    // Checked when the config loaded (audit-schema.ts).
    const previousPublicKeyPems = config.audit.previousPublicKeys.map(readEd25519PublicKey);
    switch (action) {
      case 'verify': {
        const from = options.from === undefined ? undefined : Number(options.from);
        if (from !== undefined && (!Number.isInteger(from) || from < 0)) throw new CliError('--from must be the seq of a checkpoint');
        const notCheckpoint = from === undefined ? undefined : await fromCheckpointProblem(store.db, from);
        if (notCheckpoint) throw new CliError(`--from ${from}: ${notCheckpoint}`);
        const publicKeyPem = options['public-key'] ? readPublicKey(options['public-key']) : audit.signer?.publicKeyPem;
        const report = await verifyChain(store.db, { publicKeyPem, previousPublicKeyPems, fromCheckpoint: from, checkpointEvery });
        if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else if (report.ok) {
          // Without a public key nothing vouches for the checkpoints: say so in the verdict itself.
          const unsigned = report.problems.some((p) => p.message.startsWith('no public key'));
          const checkpoints = unsigned ? `${report.checkpoints} checkpoints whose signatures were NOT checked` : `${report.checkpoints} signed checkpoints`;
          process.stdout.write(`chain verified: events ${report.fromSeq}..${report.toSeq} (${report.events} events), ${checkpoints}, ${report.exchanges} exchange records\n`);
          for (const p of report.problems) process.stdout.write(`warning: ${p.message}${unsigned ? ' (no audit.signingKey or key file here: pass --public-key FILE, e.g. public-key.pem of an evidence bundle)' : ''}\n`);
        } else {
          const first = report.problems.find((p) => !p.message.startsWith('no public key'))!;
          process.stdout.write(`chain BROKEN at ${first.seq !== undefined ? `event seq ${first.seq}` : `exchange ${first.exchangeId}`}${first.eventId ? ` (${first.eventId})` : ''}: ${first.message}\n`);
          for (const p of report.problems) if (p !== first) process.stdout.write(`also: ${p.message}\n`);
        }
        if (!report.ok) process.exitCode = 3;
        return;
      }
      case 'prune': {
        if (!options.before) throw new CliError('usage: gatehouse audit prune --before TIME [--force]');
        const before = parseIsoTime(options.before);
        if (before === undefined) throw new CliError('--before must be an ISO 8601 time, e.g. 2026-01-01T00:00:00Z');
        // The chain is verified first: pruning over a break would erase the evidence of it.
        const report = await verifyChain(store.db, { publicKeyPem: audit.signer?.publicKeyPem, previousPublicKeyPems, checkpointEvery });
        const breaks = report.problems.filter((p) => !p.message.startsWith('no public key'));
        let result;
        try {
          result = await pruneBefore(audit.writer, before, cliActor(), { breaks, force: options.force });
        } catch (error) {
          if (!(error instanceof PruneOverBreakError)) throw error;
          process.stderr.write(`gatehouse: nothing pruned: ${error.message}\n  Investigate with gatehouse audit verify first; --force prunes anyway and records the break in the audit.pruned event.\n`);
          process.exitCode = 3;
          return;
        }
        if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else if (result.events === 0) process.stdout.write('nothing to prune: no signed checkpoint before that time\n');
        else process.stdout.write(`pruned events through seq ${result.throughSeq}: ${result.events} events, ${result.exchanges} exchange records; verification now starts at checkpoint ${result.throughSeq}\n`);
        return;
      }
      case 'export': {
        if (!options.out) throw new CliError('usage: gatehouse audit export --out DIR|FILE.csv [filters]');
        // An export holds every match; a limit would silently leave exchanges out of the evidence.
        if (options.limit !== undefined) throw new CliError('audit export takes no --limit: it exports every exchange the filters match');
        const filter = filterFromOptions(options);
        const out = options.out;
        if (out.toLowerCase().endsWith('.csv')) {
          const count = await exportCsv(store.db, filter, out).catch((error: unknown) => Promise.reject(unwritable(out, error)));
          // A CSV holds the prompts and answers as a bundle does: who took them is on record too.
          await audit.log.event({ kind: 'audit.exported', actor: cliActor(), target: null, details: { format: 'csv', filter: { ...filter }, exchanges: count } });
          process.stdout.write(`exported ${count} exchanges to ${out}\n`);
          if (count === 0) await hintUnmatchedFilters(store.db, filter, config);
          return;
        }
        if (!audit.signer) throw new CliError('no audit signing key: start the gateway once (it creates audit.keyFile) or set audit.signingKey');
        const result = await exportBundle(store.db, filter, out, audit.signer).catch((error: unknown) => Promise.reject(unwritable(out, error)));
        await audit.log.event({ kind: 'audit.exported', actor: cliActor(), target: null, details: { format: 'bundle', filter: { ...filter }, exchanges: result.exchanges, events: result.events } });
        if (result.exchanges === 0) await hintUnmatchedFilters(store.db, filter, config);
        process.stdout.write(`exported ${result.exchanges} exchanges and ${result.events} events to ${out}; verify with:\n  cd ${out} && sha256sum -c manifest.sha256 && openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in manifest.sha256 -sigfile manifest.sig\n`);
        return;
      }
      case 'alerts':
        return alertsCommand(store.db, options);
      default:
        throw new CliError('usage: gatehouse audit verify|prune|export|alerts');
    }
  });
}

/** A file-system error while writing an export, as one line naming --out (exit 1); anything else as it is. */
function unwritable(out: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || (error as NodeJS.ErrnoException).syscall === undefined) return error;
  const why: Record<string, string> = {
    ENOENT: 'its directory does not exist',
    EEXIST: 'a file is there; a bundle goes to a directory, a CSV to a name ending in .csv',
    ENOTDIR: 'a file is in the way; a bundle goes to a directory, a CSV to a name ending in .csv',
    EISDIR: 'a directory is there',
    EACCES: 'permission denied',
    ENOSPC: 'no space left on the device',
  };
  return new CliError(`--out ${out}: cannot write it (${code}: ${why[code] ?? (error as Error).message})`, 1);
}

/** The public key of `--public-key FILE` as SPKI PEM, or a usage error naming the file. */
function readPublicKey(file: string): string {
  try {
    return readEd25519PublicKey(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && !code.startsWith('ERR_')) throw new CliError(`--public-key ${file}: cannot read it (${code})`);
    if ((error as Error).message.startsWith('not an Ed25519')) throw new CliError(`--public-key ${file}: ${(error as Error).message}: checkpoints are signed with Ed25519`);
    throw new CliError(`--public-key ${file}: not a PEM public key (use public-key.pem from an evidence bundle, or: openssl pkey -in KEY -pubout)`);
  }
}
