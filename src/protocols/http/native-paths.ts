// What the path a request reaches the target by says about the answer, read from the
// full upstream path (the connection target's path and query joined with the caller's,
// as joinUpstreamPath sends it), never from the caller's part alone: a connection whose
// target is `http://ollama:11434/api` is called at `/chat`, and its target gets
// `/api/chat`; one whose target carries `?alt=sse` streams events whatever the caller
// asks. Escapes are decoded as the target's router decodes them (`%3A` is `:`).

import { decodeURIComponentSafe, joinUpstreamPath, type HttpConnection } from './connection.js';
import type { ErrorShape } from './write-error.js';

/** The upstream path split: `pathname` decoded ('' when it cannot be), `query` as sent. */
export interface UpstreamPath {
  readonly pathname: string;
  readonly query: URLSearchParams;
}

export function upstreamPathOf(connection: Pick<HttpConnection, 'basePath' | 'baseQuery'>, rest: string): UpstreamPath {
  const joined = joinUpstreamPath(connection.basePath, rest, connection.baseQuery);
  const mark = joined.indexOf('?');
  return {
    pathname: decodeURIComponentSafe(mark < 0 ? joined : joined.slice(0, mark)) ?? '',
    query: new URLSearchParams(mark < 0 ? '' : joined.slice(mark + 1)),
  };
}

/** Ollama's native endpoints, at the end of the path (Ollama may sit under a proxy's prefix). */
const ollamaPath = /\/api\/(?:chat|generate|embed|embeddings|pull|push|create|show|tags|ps|copy|delete|version|blobs\/[^/]+)\/?$/;

/**
 * Errors on Ollama's native API take Ollama's shape (write-error.ts), on an `http`
 * connection and on an `openai` one (declared so that request rules read its prompts:
 * no OpenAI API has these paths).
 */
export function errorShapeOf(path: UpstreamPath): ErrorShape {
  return ollamaPath.test(path.pathname) ? 'ollama' : 'openai';
}

/**
 * An embeddings call of a native API, by its path: Ollama `/api/embed` and
 * `/api/embeddings`, Gemini `…:embedContent` and `…:batchEmbedContents`, Cohere `/embed`,
 * Bedrock `/model/<an embedding model>/invoke` (`amazon.titan-embed-…`, `cohere.embed-…`).
 */
export function isNativeEmbeddingsPath(path: UpstreamPath): boolean {
  if (/(?:\/api\/embed(?:dings)?|:embedContent|:batchEmbedContents|\/embed)\/?$/.test(path.pathname)) return true;
  return /\/model\/[^/]*embed[^/]*\/invoke\/?$/i.test(path.pathname);
}

/**
 * A Google server-streaming method (Gemini's `…:streamGenerateContent`, on the Gemini API
 * `/v1beta/models/M`, `/v1beta/tunedModels/M`, and on Vertex AI
 * `/v1/projects/P/locations/L/publishers/google/models/M`, `…/endpoints/E`, or express
 * mode's `/v1/publishers/google/models/M`) without `alt=sse` (nor `$alt=sse`, the same
 * system parameter) in the query the target gets: Google answers one JSON array, an
 * element per chunk (the REST default). The relay streams it element by element only
 * when the answer says `application/json` and starts with `[` (anything else, an error
 * object say, is held and masked whole): the path is a hint, the answer decides.
 */
export function asksForJsonArrayStream(path: UpstreamPath): boolean {
  if (!/:streamGenerateContent\/?$/.test(path.pathname)) return false;
  return (path.query.get('alt') ?? path.query.get('$alt')) !== 'sse';
}
