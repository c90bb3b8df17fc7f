// The recorder's worker thread: its own store connection, audit chain writer and
// recorder. The gateway thread posts each record operation as plain data and awaits the
// reply, which is sent only after the batch holding it has committed; so durability is
// unchanged, while the CPU spent on hashing, full-text indexing and SQLite writes
// leaves the thread that relays traffic.

import { parentPort, workerData } from 'node:worker_threads';
import type { AuditConfig } from '../config/audit-schema.js';
import { openStore, type StoreConfig } from '../store/index.js';
import { openAuditTrail } from './open-audit.js';
import { createRawSealer } from './raw-content.js';
import { createRecorder } from './recorder.js';
import { startSearchIndexer } from './search-indexer.js';
import type { RecorderBatch, RecorderReply, RecorderRequest, ReplyBatch } from './worker-recorder.js';

interface RecorderWorkerData {
  readonly store: StoreConfig;
  readonly audit: AuditConfig;
  readonly rawKey: string | undefined;
}

const data = workerData as RecorderWorkerData;
const port = parentPort!;
const store = await openStore(data.store, { migrate: false });
const trail = openAuditTrail(store.db, data.audit, { createKey: false, withSinks: true, sqlitePath: store.sqlitePath });
const searchIndexer = store.sqlitePath ? startSearchIndexer(store.sqlitePath) : undefined;
const reexecutionOf = new Map<string, string>();
const recorder = createRecorder(store.db, {
  writer: trail.writer,
  raw: data.rawKey ? createRawSealer(data.rawKey) : undefined,
  reexecutionOf: (exchange) => {
    const original = reexecutionOf.get(exchange.id);
    reexecutionOf.delete(exchange.id);
    return original;
  },
});

async function perform(request: RecorderRequest): Promise<void> {
  switch (request.op) {
    case 'open':
      if (request.reexecutionOf) reexecutionOf.set(request.exchange.id, request.reexecutionOf);
      return recorder.open(request.exchange, request.decision, request.request);
    case 'progress':
      return recorder.progress(request.exchange, request.progress);
    case 'finish':
      return recorder.finish(request.exchange, request.outcome);
    case 'refuse':
      if (request.reexecutionOf) reexecutionOf.set(request.exchange.id, request.reexecutionOf);
      return recorder.refuse(request.exchange, request.decision, request.request, request.outcome);
    case 'drain':
      return recorder.drain();
    case 'close':
      await recorder.drain();
      searchIndexer?.close();
      await trail.close();
      await store.close();
      return undefined;
  }
}

// Replies settled in one turn go back as one message (see RecorderBatch).
let outbox: RecorderReply[] = [];
const reply = (message: RecorderReply) => {
  if (outbox.push(message) === 1) {
    setImmediate(() => {
      const batch = outbox;
      outbox = [];
      port.postMessage(batch satisfies ReplyBatch);
    });
  }
};

port.on('message', (requests: RecorderBatch) => {
  for (const request of requests) {
    perform(request).then(
      () => reply({ id: request.id, ok: true }),
      (error: unknown) => reply({ id: request.id, ok: false, message: error instanceof Error ? error.message : String(error) }),
    );
  }
});
reply({ id: 0, ok: true });
