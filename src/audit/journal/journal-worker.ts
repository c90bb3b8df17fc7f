// The record journal's worker thread: applies what the gateway thread appended to the
// journal (journal-applier.ts) every few milliseconds when something was written, and at
// once when asked to drain. None of this is on the path a client waits on, and it runs
// on the other core. (The full-text index has a thread of its own: search-index-thread.ts.)

import { parentPort, workerData } from 'node:worker_threads';
import type { AuditConfig } from '../../config/audit-schema.js';
import type { AuditEvent } from '../audit-event.js';
import { chainOptionsOf, loadSigner } from '../open-audit.js';
import { JournalApplier } from './journal-applier.js';
import type { FromJournalWorker, JournalWorkerData, ToJournalWorker } from './journal-recorder.js';

const data = workerData as JournalWorkerData;
const port = parentPort!;
const audit: AuditConfig = data.audit;
const progress = new Int32Array(data.progress);

const applier = new JournalApplier(data.sqlitePath, {
  chain: chainOptionsOf(audit, loadSigner(audit, { createKey: false })),
  ownSegmentPrefix: data.ownSegmentPrefix,
});
const post = (message: FromJournalWorker) => port.postMessage(message);

let seen = -1;
let lastError = '';

/** Applies everything written so far; an error is reported (once per distinct message) and retried. */
function applyNow(): Error | undefined {
  seen = Atomics.load(progress, 0);
  try {
    const events = applier.applyPending();
    Atomics.store(progress, 1, seen);
    if (events.length > 0 && data.publishEvents) post({ type: 'events', events });
    lastError = '';
    return undefined;
  } catch (error) {
    seen = -1;
    const message = error instanceof Error ? error.message : String(error);
    if (message !== lastError) post({ type: 'error', message });
    lastError = message;
    return error instanceof Error ? error : new Error(message);
  }
}

/** Runs `body` (which chains events), publishing them; an error is reported like applyNow's. */
function chainNow(body: () => AuditEvent[]): void {
  try {
    const events = body();
    if (events.length > 0 && data.publishEvents) post({ type: 'events', events });
  } catch (error) {
    post({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  }
}

let idle = 0;
const timer = setInterval(() => {
  if (Atomics.load(progress, 0) !== seen) applyNow();
  // A segment deleted while nothing is written is found within a second too.
  else if (++idle % 10 === 0) chainNow(() => applier.findMissing());
}, data.intervalMs);

port.on('message', (message: ToJournalWorker) => {
  if (message.type === 'segment') return chainNow(() => applier.register(message.name));
  if (message.type === 'unlinked') {
    applier.noteUnlinked(message.name, message.written);
    return chainNow(() => applier.findMissing());
  }
  const failure = applyNow();
  if (message.type === 'close') {
    clearInterval(timer);
    applier.close();
  }
  post({ type: 'done', id: message.id, error: failure?.message });
});

// Whatever earlier runs left unapplied (a crash) is in the store before the gateway serves.
const failure = applyNow();
post({ type: 'ready', error: failure?.message });
