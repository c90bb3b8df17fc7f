// Response filters: what stands between the target's bytes and the client's. A filter
// either streams (each upstream chunk in, what may be released now out) or buffers
// (the whole body in, the transformed body out at the end, so the headers wait and an
// error can still be a proper error answer). The relay applies at most one of each
// kind, chosen here:
//   SSE answer + masking and/or a response guard  → streaming SseMasker
//   NDJSON answer (Ollama; Cohere v1's application/stream+json) + masking and/or guard → streaming NdjsonMasker, line by line
//   AWS event stream (Bedrock) + masking and/or guard → streaming EventStreamMasker, frame by frame
//   streamed JSON array (Gemini without alt=sse) + masking and/or guard → streaming JsonArrayStreamMasker
//   JSON answer + masking                         → buffered, string values masked
//   embeddings answer + an embeddings rule         → buffered, vectors transformed
//   (a native API's too: Ollama, Gemini, Cohere, Bedrock Titan; its strings then masked)
//   JSON answer + a response guard                → buffered, text checked first (guard-text.ts)
//   opaque answer (octet-stream …) + masking      → held while UTF-8 text, masked at the
//                                                   end; from its first binary byte passed
//   (a held answer in a declared non-UTF-8 charset is decoded with it, sent as UTF-8)
// A held answer that is an event stream or JSON Lines under another label (none,
// `application/json`, octet-stream …) is masked as one (maskHeldText).
// A filter that throws ends the answer with an error: it never lets raw bytes through.
// Mid-stream, a streaming filter ends the answer with an error in its own framing
// (failureTail): an SSE `error` event, an NDJSON `{"error": …}` line (as Ollama writes
// one), an AWS event stream exception frame, an error element closing a JSON array.

import { GatehouseError } from '../../errors/index.js';
import { encodeFrame, encodeHeaders, EventStreamMasker, JsonArrayStreamMasker, jsonArraySeparator, maskJsonText, NdjsonMasker, SseMasker, totalCount, transformEmbeddings, transformNativeEmbeddings, withoutLogprobs, type EmbeddingsRule, type EntityCounts, type MaskPlan } from '../../mask/index.js';
import { guardTextOfAnswer } from './guard-text.js';
import { errorEnvelope } from './write-error.js';

/** A response-side guardrail: sees the answer text so far; a result blocks the answer. */
export type ResponseGuard = (accumulatedText: string) => { rule: string; message: string } | undefined;

export interface ResponseFilter {
  /** True when the filter needs the whole body before anything (headers included) is sent. */
  readonly buffered: boolean;
  push(chunk: Buffer): string | Buffer;
  end(): string | Buffer;
  /**
   * What ends a streamed answer that fails mid-stream (masking or a response guard), in
   * the answer's own framing, so the client reads an error rather than a cut connection.
   */
  failureTail?(failure: GatehouseError): string | Buffer;
}

export interface FilterChoice {
  readonly isSse: boolean;
  /** A newline-delimited JSON answer (`application/x-ndjson`) in UTF-8. */
  readonly isNdjson?: boolean | undefined;
  /** The NDJSON answer is a stream by its type (`application/stream+json`): lines of any shape stream their text. */
  readonly ndjsonStream?: boolean | undefined;
  /** An AWS event stream (`application/vnd.amazon.eventstream`, Bedrock's streams). */
  readonly isAwsEventStream?: boolean | undefined;
  /** A JSON array streamed element by element (Gemini's `streamGenerateContent` without `alt=sse`). */
  readonly isJsonArrayStream?: boolean | undefined;
  readonly isEmbeddings: boolean;
  /** An embeddings answer of a native API (Ollama, Gemini, Cohere, Bedrock): see transformNativeEmbeddings. */
  readonly isNativeEmbeddings?: boolean | undefined;
  readonly plan: MaskPlan | undefined;
  readonly guard: ResponseGuard | undefined;
  readonly counts: EntityCounts;
  /** Largest body a buffered filter holds. */
  readonly maxBufferBytes: number;
  /** Largest text handed to the guard (the rest is not accumulated). */
  readonly maxGuardTextBytes: number;
  /** The answer's declared charset when it is not UTF-8 (`answerCharset`): a buffered body is decoded with it. */
  readonly charset?: string | undefined;
  /** The Content-Type says neither text nor media: the body is masked as text if it is UTF-8, else passed as it came. */
  readonly opaque?: boolean | undefined;
  /** The label may hide a stream (none, JSON, opaque): a held body that reads as an event stream or JSON Lines is masked as one. */
  readonly mayBeStream?: boolean | undefined;
}

/**
 * The `charset` of a textual Content-Type when it is not UTF-8 (or its subset
 * US-ASCII), lower-cased; undefined otherwise. A buffered answer in another charset is
 * decoded with it, masked, and sent as UTF-8 (`utf8ContentType`): read as UTF-8, a
 * UTF-16 answer hid every value behind NUL bytes and went out unmasked.
 */
export function answerCharset(contentType: string | undefined): string | undefined {
  const match = contentType === undefined ? null : /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  const charset = match?.[1]?.toLowerCase();
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8' || charset === 'us-ascii') return undefined;
  return charset;
}

/** `contentType` with its charset replaced by utf-8 (the masked body is written in UTF-8). */
export function utf8ContentType(contentType: string): string {
  return contentType.replace(/(;\s*charset\s*=\s*)"?[^";\s]+"?/i, '$1utf-8');
}

/** A plan that finds nothing, for a guard without masking. */
const noMasking: MaskPlan = { profiles: [], fields: undefined, embeddings: undefined, find: () => [], holdBack: (text) => text.length };

export function chooseResponseFilter(choice: FilterChoice): ResponseFilter | undefined {
  const { plan, guard } = choice;
  if (choice.isEmbeddings) {
    const rule = plan?.embeddings;
    if (!rule) return undefined;
    return bufferedFilter(choice.maxBufferBytes, choice.charset, (body) => embeddingsBody(body, rule));
  }
  // Whatever its content type: no embeddings API streams its vectors, so an event stream
  // here is held and fails to read as JSON (masking_failed) rather than relayed as text.
  const nativeRule = choice.isNativeEmbeddings ? plan?.embeddings : undefined;
  if (nativeRule && plan) {
    // Its strings (Cohere echoes the `texts` embedded) are masked as in any JSON answer.
    return bufferedFilter(choice.maxBufferBytes, choice.charset, (body) => maskJsonAnswer(transformNativeEmbeddings(body, nativeRule), plan, choice.counts, false));
  }
  if (!plan && !guard) return undefined;
  if (choice.isSse || choice.isNdjson || choice.isAwsEventStream || choice.isJsonArrayStream) return streamFilter(plan ?? noMasking, guard, choice);
  if (choice.opaque) {
    if (!plan) return undefined;
    return opaqueFilter(choice.maxBufferBytes, (body) => maskHeldText(body, plan, choice.counts, true));
  }
  return bufferedFilter(choice.maxBufferBytes, choice.charset, (body) => {
    if (guard) checkGuard(guard, guardTextOfAnswer(body));
    return plan ? maskJsonAnswer(body, plan, choice.counts, choice.mayBeStream ?? false) : body;
  });
}

/**
 * The JSON answer masked; when a value was masked, its `logprobs` emptied: they spell
 * the text token by token (`jane`, `.roe`, `@example` …), pieces no detector finds.
 * Then the body is written anew (numbers as JavaScript writes them).
 */
function maskJsonAnswer(body: string, plan: MaskPlan, counts: EntityCounts, mayBeStream: boolean): string {
  const before = totalCount(counts);
  const masked = maskHeldText(body, plan, counts, mayBeStream);
  if (totalCount(counts) === before || !masked.includes('"logprobs"')) return masked;
  try {
    return JSON.stringify(withoutLogprobs(JSON.parse(masked)));
  } catch {
    return masked;
  }
}

/**
 * A held answer masked as JSON (or JSON Lines, or text) — or, when its label may hide a
 * stream (none, `application/json`, octet-stream …) and it reads as an event stream or
 * NDJSON, as one: masked as text, a value split across two events went out in pieces.
 * (A YAML answer that starts with `id:` is not an event stream: its label says so.)
 */
function maskHeldText(body: string, plan: MaskPlan, counts: EntityCounts, mayBeStream: boolean): string {
  const masker = !mayBeStream ? undefined : eventStreamStart.test(body) ? new SseMasker({ plan, counts }) : jsonLinesStart.test(body) ? new NdjsonMasker({ plan, counts, maxLineBytes: body.length }) : undefined;
  if (!masker) return maskJsonText(body, plan, counts);
  return masker.push(Buffer.from(body, 'utf8')) + masker.end();
}

/** The first line of an event stream: a `data:`, `event:`, `id:` or `retry:` field, or a `:` comment. */
const eventStreamStart = /^\ufeff?(?:[\r\n]*)(?:data|event|id|retry)?:/;
/** Two JSON objects on the first two lines (one document cannot be that): JSON Lines, e.g. an Ollama stream under another label. */
const jsonLinesStart = /^\s*\{[^\n]*\}[ \t\r]*\n\s*\{/;

function embeddingsBody(body: string, rule: EmbeddingsRule): string {
  return transformEmbeddings(body, rule);
}

/** An event stream, an NDJSON answer or an AWS event stream: masked as it streams, checked by the guard after each chunk. */
function streamFilter(plan: MaskPlan, guard: ResponseGuard | undefined, choice: FilterChoice): ResponseFilter {
  let text = '';
  const options = {
    plan,
    counts: choice.counts,
    onText: guard
      ? (piece: string) => {
          if (text.length < choice.maxGuardTextBytes) text += piece.slice(0, choice.maxGuardTextBytes - text.length);
        }
      : undefined,
  };
  const arrays = choice.isJsonArrayStream && !choice.isSse ? new JsonArrayStreamMasker({ ...options, maxWholeBytes: choice.maxBufferBytes }) : undefined;
  const masker = arrays ?? (choice.isSse ? new SseMasker(options) : choice.isAwsEventStream ? new EventStreamMasker(options) : new NdjsonMasker({ ...options, streamsOtherShapes: choice.ndjsonStream }));
  // What of a streamed JSON array the client was sent (a chunk whose guard check failed was not).
  let arrayOpened = false;
  let arrayElements = false;
  const released = (out: string | Buffer) => {
    if (!arrays || out.length === 0) return out;
    arrayOpened = true;
    if (out !== '[') arrayElements = true;
    return out;
  };
  return {
    buffered: false,
    failureTail(failure) {
      if (arrays) {
        // The error closes the array the client reads, as its last element; an answer held whole (not an array) is the error itself.
        if (arrays.holdsWhole) return errorEnvelope(failure);
        return `${!arrayOpened ? '[' : arrayElements ? jsonArraySeparator : ''}${errorEnvelope(failure)}]`;
      }
      if (choice.isSse) return `event: error\ndata: ${errorEnvelope(failure)}\n\n`;
      if (choice.isAwsEventStream) return awsExceptionFrame(failure);
      // Ollama's clients raise the `error` of a line (a string) as the stream's error.
      return `${errorEnvelope(failure, 'ollama')}\n`;
    },
    push(chunk) {
      const out = masker.push(chunk);
      // Checked before the masked events are released, so a blocked answer's text never leaves.
      if (guard) checkGuard(guard, text);
      return released(out);
    },
    end() {
      const out = masker.end();
      if (guard) checkGuard(guard, text);
      return released(out);
    },
  };
}

/**
 * An exception message of an AWS event stream, as Bedrock ends a stream that fails: the
 * AWS SDKs raise it as a `ModelStreamErrorException` (a type both Bedrock streams
 * declare) with the message; `code` and `rule` ride along in the payload.
 */
function awsExceptionFrame(failure: GatehouseError): Buffer {
  const headers = encodeHeaders({ ':exception-type': 'modelStreamErrorException', ':content-type': 'application/json', ':message-type': 'exception' });
  const payload = { message: failure.message, originalStatusCode: failure.status, code: failure.code, ...(failure.rule ? { rule: failure.rule } : {}) };
  return encodeFrame(headers, Buffer.from(JSON.stringify(payload), 'utf8'));
}

function checkGuard(guard: ResponseGuard, text: string): void {
  const hit = guard(text);
  if (hit) throw new GatehouseError('response_blocked', { message: hit.message, rule: hit.rule, detail: `response guard ${hit.rule}` });
}

function bufferedFilter(limit: number, charset: string | undefined, transform: (body: string) => string): ResponseFilter {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    buffered: true,
    push(chunk) {
      size += chunk.length;
      if (size > limit) throw new GatehouseError('masking_failed', { detail: `answer exceeds the masking buffer of ${limit} bytes` });
      chunks.push(chunk);
      return '';
    },
    end() {
      const body = Buffer.concat(chunks, size);
      return transform(charset === undefined ? body.toString('utf8') : decodeCharset(body, charset));
    },
  };
}

/** `body` decoded from `charset`; a charset the runtime does not know, or bytes invalid in it, fail the masking. */
function decodeCharset(body: Buffer, charset: string): string {
  let decoder: { decode(input: Uint8Array): string };
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    throw new GatehouseError('masking_failed', { detail: `cannot read an answer in charset ${charset}` });
  }
  try {
    return decoder.decode(body);
  } catch {
    throw new GatehouseError('masking_failed', { detail: `the answer is not valid ${charset}` });
  }
}

/**
 * An answer whose type says neither text nor media: held while its bytes are UTF-8 text,
 * then masked whole at the end; released as it came from the first byte that is not
 * (a NUL or an invalid sequence: binary formats show one early), and from then on
 * passed through. Not `buffered`: the headers go out first, so a large binary answer
 * still streams; text over the limit fails closed (the answer is cut, never sent raw).
 */
function opaqueFilter(limit: number, transform: (body: string) => string): ResponseFilter {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let text: string[] | undefined = [];
  let chunks: Buffer[] = [];
  let size = 0;
  return {
    buffered: false,
    push(chunk) {
      if (text === undefined) return chunk;
      let piece: string | undefined;
      try {
        piece = chunk.includes(0) ? undefined : decoder.decode(chunk, { stream: true });
      } catch {
        piece = undefined;
      }
      if (piece === undefined) {
        // Binary: what was held goes out as it came, with this chunk.
        const held = Buffer.concat([...chunks, chunk]);
        text = undefined;
        chunks = [];
        return held;
      }
      size += chunk.length;
      if (size > limit) throw new GatehouseError('masking_failed', { detail: `answer exceeds the masking buffer of ${limit} bytes` });
      text.push(piece);
      chunks.push(chunk);
      return '';
    },
    end() {
      if (text === undefined) return '';
      let last: string;
      try {
        last = decoder.decode();
      } catch {
        // Cut inside a character: not text after all.
        return Buffer.concat(chunks);
      }
      return transform(text.join('') + last);
    },
  };
}
