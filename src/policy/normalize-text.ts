// Normalises text for keyword matching, so that trivial evasions still match:
// - Unicode compatibility forms (fullwidth "ｄｒｏｐ", ligatures, superscripts) → NFKD;
// - combining marks removed ("dróp" → "drop");
// - case folded (toLowerCase after decomposition; "ß" stays "ß", which NFKD keeps);
// - common Latin look-alikes from Cyrillic and Greek mapped to Latin ("dгор" → "drop");
// - everything that is not a letter or a digit removed: spaces, punctuation,
//   zero-width and other formatting characters ("d r o p  t-a-b-l-e" → "droptable").
// Keywords go through the same function, so a keyword "drop table" is "droptable".
// The price of ignoring separators: matching is on the letter sequence, so a keyword
// can also match across word boundaries ("backdrop table" contains "drop table").

/** Cyrillic and Greek letters that render like a Latin letter, lower case (after folding). */
const confusables: Readonly<Record<string, string>> = {
  // Cyrillic
  'а': 'a', 'в': 'b', 'с': 'c', 'ԁ': 'd', 'е': 'e', 'ё': 'e', 'һ': 'h', 'і': 'i', 'ї': 'i', 'ј': 'j', 'к': 'k',
  'ӏ': 'l', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'ԛ': 'q', 'г': 'r', 'ѕ': 's', 'т': 't', 'у': 'y', 'ү': 'y',
  'х': 'x', 'ԝ': 'w', 'ь': 'b', 'п': 'n',
  // Greek
  'α': 'a', 'β': 'b', 'ϲ': 'c', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p',
  'τ': 't', 'υ': 'u', 'χ': 'x', 'γ': 'y', 'ω': 'w', 'μ': 'u', 'ϳ': 'j', 'ς': 's', 'σ': 'o',
  // Latin small capitals and other look-alikes NFKD leaves alone
  'ı': 'i', 'ȷ': 'j', 'ɡ': 'g', 'ɑ': 'a', 'ʀ': 'r', 'ᴅ': 'd', 'ᴇ': 'e', 'ᴏ': 'o', 'ᴘ': 'p', 'ᴛ': 't',
};

const marks = /\p{M}+/gu;
const separators = /[^\p{L}\p{N}]+/gu;
const nonAscii = /[^\x00-\x7f]/;
const asciiSeparators = /[^a-z0-9]+/g;

export function normalizeForKeywords(text: string): string {
  // Plain ASCII has no compatibility forms, marks or look-alikes: only case and separators.
  if (!nonAscii.test(text)) return text.toLowerCase().replace(asciiSeparators, '');
  let out = text.normalize('NFKD').replace(marks, '').toLowerCase();
  if (nonAscii.test(out)) {
    let mapped = '';
    for (const ch of out) mapped += confusables[ch] ?? ch;
    out = mapped;
  }
  return out.replace(separators, '');
}
