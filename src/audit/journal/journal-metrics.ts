// What /metrics shows of the record journal: how far applying to the store is behind.
// Normally 0 or 1; a value that keeps growing means the store cannot keep up (or
// applying fails, which the log says), while records stay safe in the journal. And how
// many applied rows wait for the full-text index: it grows while the machine is busy
// (indexing runs at background priority) and falls when it is idle.

import { Gauge, type Registry } from 'prom-client';
import type { JournalRecorder } from './journal-recorder.js';

export function registerJournalMetrics(registry: Registry, journal: JournalRecorder): void {
  new Gauge({
    name: 'gatehouse_record_journal_pending_batches',
    help: 'Batches of records written to the record journal and not yet applied to the store.',
    registers: [registry],
    collect() {
      this.set(journal.pendingBatches());
    },
  });
  new Gauge({
    name: 'gatehouse_search_index_queued_rows',
    help: 'Recorded exchanges not yet in the full-text index (search still finds them, more slowly), as counted about once a second.',
    registers: [registry],
    collect() {
      this.set(journal.unindexedRows());
    },
  });
}
