// Worker thread entry (parse-thread.ts): parses and describes long SQL texts, one at a
// time, off the gateway's event loop.

import { parentPort } from 'node:worker_threads';
import { parseAndDescribe } from './inspect-sql.js';

parentPort!.on('message', (message: { id: number; text: string }) => {
  parseAndDescribe(message.text).then(
    (result) => parentPort!.postMessage({ id: message.id, result }),
    (error: unknown) => parentPort!.postMessage({ id: message.id, result: { inspection: { ok: false, error: `the SQL could not be inspected (${(error as Error).message})` }, readsLiterals: true } }),
  );
});
