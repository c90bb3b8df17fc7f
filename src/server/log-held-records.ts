// The log lines of the records held while the PostgreSQL store was away
// (audit/held-records.ts): one per report, saying what happened to them.

import type { HeldRecordsReport } from '../audit/held-records.js';
import type { Logger } from '../observability/index.js';

/** Log lines for records held while the PostgreSQL store was away (audit/held-records.ts). */
export function logHeldRecords(logger: Logger): (report: HeldRecordsReport) => void {
  return ({ held, written, lost, error, kept, recovered, found, onDisk, notSpilled, rejected }) => {
    if (rejected) logger.error({ err: rejected }, 'held records rejected: a spill file was altered (or written under another key); those records are not written');
    else if (found) logger.warn({ recovered, found }, 'held records left by the previous run: written when the store answers');
    else if (notSpilled) logger.error({ held, err: notSpilled }, 'held records not kept on disk: a crash now loses them');
    else if (kept) logger.error({ kept, lost, onDisk, err: error }, 'held records kept on disk: the next start writes them');
    // The witness of how many lines the file had, outside the data directory (held-records.ts).
    else if (onDisk) logger.warn({ held, onDisk }, 'held records on disk');
    else if (lost) logger.error({ lost, written, held, onDisk, err: error }, 'records lost: the store did not take them');
    else if (written) logger.info({ written, held, onDisk }, 'held records written: the store answers again');
    else logger.error({ held, err: error }, 'store unreachable: records held in memory, written when it answers again');
  };
}
