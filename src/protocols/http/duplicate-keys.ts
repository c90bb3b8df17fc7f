// JSON parsers disagree on an object with the same key twice: JavaScript and Python keep
// the last, simdjson and gjson-style readers the first, serde refuses it. A body whose
// `model` or prompt the gateway read one way could reach the model read the other, so
// such a body is refused before it is inspected.

/**
 * The first key that occurs twice in one object of `text`, or undefined. `text` must be
 * valid JSON (JSON.parse accepted it): the scan only tracks strings, braces and commas.
 * Linear in the text; iterative, so nesting depth does not matter.
 */
export function duplicateKey(text: string): string | undefined {
  // No object can repeat a key when the text has at most one key.
  if (text.indexOf(':') === text.lastIndexOf(':')) return undefined;
  const stack: Array<Set<string> | undefined> = []; // a Set per open object, undefined per array
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      let escaped = false;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x5c) {
          escaped = true;
          j += 2;
        } else if (d === 0x22) break;
        else j++;
      }
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        // Compared decoded: `"model"` and `"mod\u0065l"` are the same key.
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(undefined);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] !== undefined;
    }
  }
  return undefined;
}
