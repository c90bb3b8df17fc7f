// Keeps the first `limit` bytes of a body for the recording, and whether it was cut.
// Only textual bodies are kept: a binary body (weights, archives) is recorded by size.

const textual = /^(text\/|application\/(json|[\w.+-]+\+json|x-ndjson|xml|[\w.+-]+\+xml|x-www-form-urlencoded|javascript|yaml|x-yaml))/i;

export function isTextual(contentType: string | undefined): boolean {
  // An empty Content-Type says no more than a missing one: read as text (so an answer
  // with `content-type:` and nothing after it is masked and recorded, not passed as binary).
  return contentType === undefined || contentType.trim() === '' || textual.test(contentType);
}

/** Media and archives: binary by their type, whatever their bytes (streamed speech stays streamed). */
const binaryMedia = /^(image|audio|video|font)\/|^application\/(zip|gzip|x-gzip|x-tar|x-bzip2|x-xz|x-7z-compressed|zstd|vnd\.rar|x-rar-compressed|pdf|wasm)\s*(;|$)/i;

/**
 * A type that says neither text nor media (`application/octet-stream`, `multipart/…`,
 * an unknown `application/x-…`): its bytes decide, when the answer is to be masked.
 */
export function isOpaque(contentType: string | undefined): boolean {
  return !isTextual(contentType) && !binaryMedia.test(contentType!);
}

export class BodyCapture {
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #truncated = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    const room = this.#limit - this.#size;
    if (room <= 0) {
      this.#truncated ||= chunk.length > 0;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#chunks.push(kept);
    this.#size += kept.length;
    if (kept.length < chunk.length) this.#truncated = true;
  }

  get truncated(): boolean {
    return this.#truncated;
  }

  text(): string {
    // One chunk (a typical JSON answer) is decoded where it lies, without a copy.
    if (this.#chunks.length === 1) return this.#chunks[0]!.toString('utf8');
    return Buffer.concat(this.#chunks, this.#size).toString('utf8');
  }
}

/** The recorded form of a whole buffered body. */
export function captureWhole(body: Buffer, limit: number): { text: string; truncated: boolean } {
  if (body.length <= limit) return { text: body.toString('utf8'), truncated: false };
  return { text: body.subarray(0, limit).toString('utf8'), truncated: true };
}
