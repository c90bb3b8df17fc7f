// Cuts an event stream into events (WHATWG HTML §9.2.6 "Interpreting an event stream"):
// lines end in CRLF, LF or a lone CR; an empty line ends an event; `data:` lines join
// with `\n`; a line starting with `:` is a comment. Every event is bounded.

/** One event as read: its data (undefined: no `data:` line), its other lines, whether it had a comment. */
export interface SseEvent {
  readonly data: string | undefined;
  /** Field lines other than `data:` (`event:`, `id:`, `retry:` …), as they came. */
  readonly fields: readonly string[];
  readonly comment: boolean;
}

export class SseEventReader {
  readonly #maxEventBytes: number;
  readonly #decoder = new TextDecoder();
  #pending = '';
  /** The last piece of upstream text ended in `\r`. */
  #afterCr = false;

  constructor(maxEventBytes: number) {
    this.#maxEventBytes = maxEventBytes;
  }

  /** Raw upstream bytes in; the complete events they finish, each as its block of lines. */
  push(chunk: Uint8Array): string[] {
    this.#pending += this.#lines(this.#decoder.decode(chunk, { stream: true }));
    const events: string[] = [];
    for (;;) {
      // Line ends are `\n` by then (`#lines`).
      const end = this.#pending.indexOf('\n\n');
      if (end < 0) break;
      if (end > this.#maxEventBytes) throw new Error(`an SSE event exceeds ${this.#maxEventBytes} bytes`);
      events.push(this.#pending.slice(0, end));
      this.#pending = this.#pending.slice(end + 2);
    }
    if (this.#pending.length > this.#maxEventBytes) throw new Error(`an SSE event exceeds ${this.#maxEventBytes} bytes`);
    return events;
  }

  /** End of the upstream body: the last, unterminated event (undefined when there is none). */
  end(): string | undefined {
    const rest = this.#pending + this.#lines(this.#decoder.decode());
    this.#pending = '';
    return rest.trim() === '' ? undefined : rest;
  }

  /**
   * `text` with every line ending as `\n`: SSE lines end in CRLF, LF or a lone CR. A
   * stream that ended its lines in CR alone was never cut into events, so a value split
   * across two of them went out in pieces that were each masked alone.
   */
  #lines(text: string): string {
    // A CR that ended the last piece already counted as a line end: an LF after it is part of it.
    if (text === '') return text;
    if (this.#afterCr && text.startsWith('\n')) text = text.slice(1);
    this.#afterCr = text.endsWith('\r');
    return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
  }
}

/** The fields of one event's block of lines. */
export function parseEvent(block: string): SseEvent {
  const fields: string[] = [];
  let data: string | undefined;
  let comment = false;
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith('data:')) data = (data === undefined ? '' : `${data}\n`) + line.slice(line[5] === ' ' ? 6 : 5);
    else if (line.startsWith(':')) comment = true;
    else if (line !== '') fields.push(line);
  }
  return { data, fields, comment };
}

/** `data:` lines carrying `text` (a newline inside it becomes a new data line). */
export function dataLines(text: string): string {
  return text.split('\n').map((line) => `data: ${line}`).join('\n');
}
