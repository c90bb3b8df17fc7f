// Masks a streamed JSON array, as Google Gemini streams `streamGenerateContent` when
// the caller does not ask for `alt=sse` (the REST default): one `application/json`
// answer, `[{chunk},\r\n{chunk},\r\n…]`, each element a GenerateContentResponse sent as
// the model writes it. Held whole and masked as one JSON body, each element's parts
// were masked apart, so a value split across two elements (`jane.do` | `e@example.com`)
// went out in pieces, and the answer waited for its last token.
// Here the array is cut into its elements as they arrive (a bounded scanner over the
// JSON text: strings, escapes, nesting) and each object or array element goes through
// an SseMasker as one event, so the Gemini dialect streams each candidate's text (and
// its thoughts apart) across elements exactly as it does with `alt=sse`. Each event the
// masker releases is written as one element; `[` leaves at once, `]` after what was held.
// An answer that does not start with `[` (an error object) is held and masked as one
// JSON body. An element longer than `maxElementBytes`, or text after the closing `]`,
// fails the stream (the caller turns that into an error, never raw data).

import type { MaskPlan } from './plan.js';
import type { EntityCounts } from './operators.js';
import { maskJsonText } from './json-masker.js';
import { parseEvent, SseEventReader } from './sse-framing.js';
import { SseMasker } from './sse-masker.js';

export interface JsonArrayStreamMaskerOptions {
  readonly plan: MaskPlan;
  readonly counts: EntityCounts;
  readonly maxElementBytes?: number;
  /** Largest answer held whole when it is not an array (the masking buffer). */
  readonly maxWholeBytes?: number;
  /** Called with each piece of raw answer text as it is read (for response guards). */
  readonly onText?: (text: string) => void;
}

/** Between elements Google writes `,\r\n`: kept, so the answer looks as it came. */
export const jsonArraySeparator = ',\r\n';
const separator = jsonArraySeparator;

export class JsonArrayStreamMasker {
  readonly #plan: MaskPlan;
  readonly #counts: EntityCounts;
  readonly #onText: ((text: string) => void) | undefined;
  readonly #max: number;
  readonly #maxWhole: number;
  readonly #sse: SseMasker;
  /** Reads back the events the SseMasker released. */
  readonly #released = new SseEventReader(Number.MAX_SAFE_INTEGER);
  readonly #decoder = new TextDecoder();
  #phase: 'start' | 'between' | 'element' | 'whole' | 'closed' = 'start';
  /** The element being read, as text. */
  #element = '';
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** Elements written so far (the next needs a separator). */
  #written = 0;

  constructor(options: JsonArrayStreamMaskerOptions) {
    this.#plan = options.plan;
    this.#counts = options.counts;
    this.#onText = options.onText;
    this.#max = options.maxElementBytes ?? 1024 * 1024;
    this.#maxWhole = options.maxWholeBytes ?? 16 * 1024 * 1024;
    this.#sse = new SseMasker({ plan: options.plan, counts: options.counts, onText: options.onText, maxEventBytes: this.#max * 3 + 16 });
  }

  /** True once the answer turned out not to be an array (held whole; see end). */
  get holdsWhole(): boolean {
    return this.#phase === 'whole';
  }

  /** Raw upstream bytes in; the opening `[` and masked, complete elements out. */
  push(chunk: Uint8Array): string {
    return this.#text(this.#decoder.decode(chunk, { stream: true }));
  }

  /** End of the upstream body: an answer held whole, masked; or what the stream held. */
  end(): string {
    let out = this.#text(this.#decoder.decode());
    if (this.#phase === 'whole') {
      this.#onText?.(this.#element);
      return maskJsonText(this.#element, this.#plan, this.#counts);
    }
    // Cut before its `]`: what was held goes out, masked, and the answer ends as cut.
    if (this.#phase === 'between' || this.#phase === 'element') out += this.#elements(this.#sse.end());
    return out;
  }

  #text(text: string): string {
    if (this.#phase === 'whole') return this.#hold(text);
    let out = '';
    let from = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      const phase = this.#phase;
      if (phase === 'start') {
        if (isSpace(c) || c === 0xfeff) continue;
        if (c === 0x5b /* [ */) {
          this.#phase = 'between';
          out += '[';
          continue;
        }
        this.#phase = 'whole';
        from = i;
        break;
      }
      if (phase === 'closed') {
        if (!isSpace(c)) throw new Error('text after the end of a streamed JSON array');
        continue;
      }
      if (phase === 'between') {
        if (isSpace(c) || c === 0x2c /* , */) continue;
        if (c === 0x5d /* ] */) {
          out += this.#elements(this.#sse.end()) + ']';
          this.#phase = 'closed';
          continue;
        }
        // This character begins an element.
        this.#phase = 'element';
        from = i;
        this.#depth = 0;
        this.#inString = false;
        this.#escaped = false;
      }
      if (this.#scan(c)) {
        this.#element += text.slice(from, i + 1);
        out += this.#complete();
      } else if (this.#depth === 0 && !this.#inString && (c === 0x2c || c === 0x5d || isSpace(c))) {
        // The end of a scalar element (a number or literal): this character is not in it.
        this.#element += text.slice(from, i);
        out += this.#complete();
        i--;
      }
    }
    if (this.#phase === 'element') {
      this.#element += text.slice(from);
      if (this.#element.length > this.#max) throw new Error(`a streamed JSON array element exceeds ${this.#max} bytes`);
    } else if (this.#phase === 'whole') this.#hold(text.slice(from));
    return out;
  }

  /** An answer that is not an array, held whole (bounded by the masking buffer). */
  #hold(text: string): string {
    this.#element += text;
    if (this.#element.length > this.#maxWhole) throw new Error(`answer exceeds the masking buffer of ${this.#maxWhole} bytes`);
    return '';
  }

  /** Reads one character of an element; true when it ends an object, array or string element. */
  #scan(c: number): boolean {
    if (this.#inString) {
      if (this.#escaped) this.#escaped = false;
      else if (c === 0x5c /* \ */) this.#escaped = true;
      else if (c === 0x22 /* " */) {
        this.#inString = false;
        return this.#depth === 0;
      }
      return false;
    }
    if (c === 0x22) this.#inString = true;
    else if (c === 0x7b || c === 0x5b) this.#depth++;
    else if (c === 0x7d || c === 0x5d) {
      this.#depth--;
      return this.#depth === 0;
    }
    return false;
  }

  /** The element read: an object or array streams through the SseMasker, a scalar is masked alone. */
  #complete(): string {
    const element = this.#element.trim();
    this.#element = '';
    this.#phase = 'between';
    if (element === '') return '';
    const first = element.charCodeAt(0);
    if (first !== 0x7b && first !== 0x5b) {
      this.#onText?.(element);
      return this.#write(maskJsonText(element, this.#plan, this.#counts));
    }
    // A JSON line break outside a string is whitespace (inside one it would be invalid
    // JSON): one line, one `data:` field.
    return this.#elements(this.#sse.push(Buffer.from(`data: ${element.replace(/[\r\n]+/g, ' ')}\n\n`, 'utf8')));
  }

  /** The events the SseMasker released, each written as one element. */
  #elements(events: string): string {
    if (events === '') return '';
    let out = '';
    for (const block of this.#released.push(Buffer.from(events, 'utf8'))) {
      const data = parseEvent(block).data;
      if (data === undefined) continue;
      const first = data.charCodeAt(0);
      // Not an object or array (an element that was not JSON after all): it cannot be
      // written as an element, and passing it as text would break the array.
      if (first !== 0x7b && first !== 0x5b) throw new Error('a streamed JSON array element is not valid JSON');
      out += this.#write(data);
    }
    return out;
  }

  #write(element: string): string {
    return `${this.#written++ > 0 ? separator : ''}${element}`;
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
