// PostgreSQL's text cannot hold U+0000 ("invalid byte sequence for encoding UTF8: 0x00"),
// while a caller's prompt, body or model name may. Text the gateway stores from a caller
// is written with U+FFFD in its place, on both stores alike, so a row (and the digest an
// event records of it) is the same whichever store holds it.

export function storableText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\ufffd') : text;
}
