// Errors on the HTTP data plane use the OpenAI error envelope, so the official clients
// raise their own typed errors (AuthenticationError, PermissionDeniedError …):
//   {"error":{"message","type","code","param":null,"rule"?, …fields (review_id, review_url)}}
// Ollama's native API (`/api/chat` … on an `http` connection, native-paths.ts) is answered in Ollama's
// own shape, whose `error` is the message (ollama-js and other clients raise it; given
// the envelope's object they showed "[object Object]"), the rest alongside:
//   {"error":"message","type","code","param":null,"rule"?, …fields}

/** How an error answer is written: the OpenAI envelope, or Ollama's `{"error": "message"}`. */
export type ErrorShape = 'openai' | 'ollama';

import type { ServerResponse } from 'node:http';
import type { GatehouseError } from '../../errors/index.js';

export function errorEnvelope(error: GatehouseError, shape: ErrorShape = 'openai'): string {
  if (shape === 'ollama') return JSON.stringify({ error: error.message, type: error.type, code: error.code, param: null, ...(error.rule ? { rule: error.rule } : {}), ...error.fields });
  return JSON.stringify({
    error: { message: error.message, type: error.type, code: error.code, param: null, ...(error.rule ? { rule: error.rule } : {}), ...error.fields },
  });
}

export function writeError(res: ServerResponse, error: GatehouseError, exchangeId?: string, shape: ErrorShape = 'openai'): void {
  if (res.headersSent) {
    // Mid-stream there is no envelope to send; cutting the connection is the only way
    // to tell the client the answer is incomplete.
    res.destroy();
    return;
  }
  const body = errorEnvelope(error, shape);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (exchangeId) headers['gatehouse-exchange-id'] = exchangeId;
  if (error.status === 401) headers['www-authenticate'] = 'Bearer realm="gatehouse"';
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  // After a refused body the connection may hold unread bytes: do not reuse it.
  if (error.code === 'request_too_large' || error.code === 'request_timeout') headers['connection'] = 'close';
  res.writeHead(error.status, headers);
  res.end(body);
}
