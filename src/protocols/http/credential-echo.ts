// Credential echo scrubbing: the gateway injects the target's credential into every
// forwarded request, so it knows the exact bytes a target could send back (an
// httpbin-style `/headers`, an error message quoting the key it refused). Every answer
// of a connection with a credential is scanned for those bytes, in the forms an encoder
// would write them, and each occurrence is replaced before a byte reaches the caller or
// the recording. What it enforces:
//   - the forms: the secret; for `scheme: Basic` also the decoded `user:password` pair;
//     each of them JSON-escaped (`\"`, `\\`, `\/`, `\uXXXX` for non-ASCII) and
//     percent-encoded (upper- and lower-case hex, `+` for a space) where that differs;
//   - length-preserving replacement (credentialMarker): the answer's Content-Length and
//     any Content-Range stay true, SSE and JSON framing unchanged (the marker is ASCII
//     with no quote, backslash or newline);
//   - streaming without delay: a chunk is released at once but for a tail that is a
//     proper prefix of a form, held until the next chunk shows whether it completes.

// Scrubs are counted in the exchange's mask counts under this name (and the metric).
import { targetCredentialEntity as credentialEntity } from '../../mask/index.js';

export const credentialMarker = '[REDACTED:target_credential]';
const shortMarker = '[REDACTED]';
const noBytes = Buffer.alloc(0);

/** The byte forms to look for, built once per connection. */
export interface CredentialEchoForms {
  readonly forms: readonly Buffer[];
  /** The same forms as strings, for header values, longest first (a form inside a longer one is not cut in two). */
  readonly texts: readonly string[];
  /** Distinct first bytes of the forms, where a held tail may start. */
  readonly firstBytes: readonly number[];
  /** Longest form, in bytes. */
  readonly maxLength: number;
}

/**
 * The replacement for `length` bytes: the marker padded with `*` to the same length (cut
 * to `[REDACTED]`, or `*` alone, for a shorter value), so the answer keeps its length.
 */
export function markerFor(length: number): string {
  if (length >= credentialMarker.length) return credentialMarker + '*'.repeat(length - credentialMarker.length);
  if (length >= shortMarker.length) return shortMarker + '*'.repeat(length - shortMarker.length);
  return '*'.repeat(length);
}

/** The forms of a connection's credential (undefined: nothing to look for). */
export function credentialEchoForms(credential: { readonly scheme: string; readonly secret: string } | undefined): CredentialEchoForms | undefined {
  if (credential === undefined || credential.secret === '') return undefined;
  const values = [credential.secret];
  // Basic (RFC 7617 §2): the secret is base64(user:password); a target may echo it decoded.
  if (credential.scheme.toLowerCase() === 'basic') {
    const pair = decodedBasic(credential.secret);
    if (pair !== undefined) values.push(pair);
  }
  const unique = new Set<string>();
  for (const value of values) for (const form of encodedForms(value)) unique.add(form);
  const texts = [...unique].sort((a, b) => b.length - a.length);
  const forms = texts.map((t) => Buffer.from(t, 'utf8'));
  return {
    forms,
    texts,
    firstBytes: [...new Set(forms.map((f) => f[0]!))],
    maxLength: Math.max(...forms.map((f) => f.length)),
  };
}

function decodedBasic(secret: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(secret)) return undefined;
  const pair = Buffer.from(secret, 'base64').toString('utf8');
  return pair.includes(':') && !pair.includes('\ufffd') ? pair : undefined;
}

/** `value` as it is, and as JSON string content and a URL component would carry it. */
function encodedForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const asciiJson = json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const percent = encodeURIComponent(value);
  return [
    value,
    json,
    json.replaceAll('/', '\\/'),
    asciiJson,
    asciiJson.replaceAll('/', '\\/'),
    asciiJson.replace(/\\u([0-9a-f]{4})/g, (_, hex: string) => `\\u${hex.toUpperCase()}`),
    percent,
    percent.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
    percent.replaceAll('%20', '+'),
    // encodeURIComponent leaves !'()* as they are; some encoders (RFC 3986 strict) escape them.
    percent.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
  ];
}

/** Header values with every form replaced; the same object when none was found. */
export function scrubHeaders<T extends Readonly<Record<string, string | string[] | undefined>>>(headers: T, echo: CredentialEchoForms, counts: Record<string, number>): T | Record<string, string | string[] | undefined> {
  let out: Record<string, string | string[] | undefined> | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const scrubbed = Array.isArray(value) ? value.map((v) => scrubText(v, echo, counts)) : scrubText(value, echo, counts);
    if (Array.isArray(scrubbed) ? scrubbed.every((s, i) => s === (value as string[])[i]) : scrubbed === value) continue;
    out ??= { ...headers };
    out[name] = scrubbed;
  }
  return out ?? headers;
}

function scrubText(value: string, echo: CredentialEchoForms, counts: Record<string, number>): string {
  let out = value;
  for (const form of echo.texts) {
    if (!out.includes(form)) continue;
    const parts = out.split(form);
    counts[credentialEntity] = (counts[credentialEntity] ?? 0) + parts.length - 1;
    out = parts.join(markerFor(Buffer.byteLength(form)));
  }
  return out;
}

/**
 * The streaming scan of one answer body. `push` returns what may leave now (the chunk
 * itself when it holds no form and ends in no prefix of one); `end` returns the held
 * tail. Counts each replaced occurrence in `counts[target_credential]`.
 */
export class CredentialEchoScrubber {
  readonly #echo: CredentialEchoForms;
  readonly #counts: Record<string, number>;
  #held: Buffer | undefined;

  constructor(echo: CredentialEchoForms, counts: Record<string, number>) {
    this.#echo = echo;
    this.#counts = counts;
  }

  push(chunk: Buffer): Buffer {
    const data = this.#held === undefined ? chunk : Buffer.concat([this.#held, chunk]);
    this.#held = undefined;
    const forms = this.#echo.forms;
    let ranges: Array<[number, number]> | undefined;
    // The common case: one indexOf per form, nothing found.
    for (let f = 0; f < forms.length; f++) {
      const form = forms[f]!;
      let at = data.indexOf(form);
      while (at >= 0) {
        (ranges ??= []).push([at, at + form.length]);
        at = data.indexOf(form, at + form.length);
      }
    }
    let out = data;
    let scanFrom = 0;
    if (ranges !== undefined) {
      scanFrom = this.#merge(ranges);
      out = data === chunk ? Buffer.from(data) : data;
      // (copied before writing into it: the chunk may be shared with a reader of the raw bytes)
      this.#write(out, ranges);
    }
    const hold = this.#heldFrom(out, scanFrom);
    if (hold === out.length) return out;
    this.#held = Buffer.from(out.subarray(hold));
    return out.subarray(0, hold);
  }

  end(): Buffer {
    const held = this.#held;
    this.#held = undefined;
    return held ?? noBytes;
  }

  /** Merges overlapping ranges in place (sorted), counts them; returns the end of the last. */
  #merge(ranges: Array<[number, number]>): number {
    ranges.sort((a, b) => a[0] - b[0]);
    let w = 0;
    for (let r = 1; r < ranges.length; r++) {
      const last = ranges[w]!;
      const next = ranges[r]!;
      if (next[0] < last[1]) last[1] = Math.max(last[1], next[1]);
      else ranges[++w] = next;
    }
    ranges.length = w + 1;
    this.#counts[credentialEntity] = (this.#counts[credentialEntity] ?? 0) + ranges.length;
    return ranges[w]![1];
  }

  #write(out: Buffer, ranges: ReadonlyArray<[number, number]>): void {
    for (const [start, end] of ranges) out.write(markerFor(end - start), start, 'latin1');
  }

  /** Where the tail that is a proper prefix of a form starts (`data.length`: none). */
  #heldFrom(data: Buffer, scanFrom: number): number {
    const echo = this.#echo;
    // (clamped: a negative offset would count from the end)
    const from = Math.max(0, scanFrom, data.length - echo.maxLength + 1);
    let hold = data.length;
    for (const byte of echo.firstBytes) {
      let at = data.indexOf(byte, from);
      while (at >= 0 && at < hold) {
        if (this.#isPrefix(data, at)) {
          hold = at;
          break;
        }
        at = data.indexOf(byte, at + 1);
      }
    }
    return hold;
  }

  #isPrefix(data: Buffer, at: number): boolean {
    const length = data.length - at;
    for (const form of this.#echo.forms) {
      if (form.length > length && data.compare(form, 0, length, at) === 0) return true;
    }
    return false;
  }
}
