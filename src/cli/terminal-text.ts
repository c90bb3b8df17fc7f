// Recorded values reach the operator's terminal: a prompt, an answer, a justification
// header, an IdP's subject claim. Control characters in them (ESC starts a terminal
// escape sequence, CR and LF start a line the caller chose) are shown escaped, as
// `\x1b` (a bidirectional control as `\u202e`), so what the CLI prints is only ever
// text, never a command to the terminal, a forged row of a table or reordered text.

// C0 controls, DEL and C1 controls (U+0080-U+009F: U+009B is CSI on some terminals);
// and the bidirectional controls (marks, embeddings, overrides, isolates): a terminal
// shows the text after U+202E reversed, so a reviewer would read `account 1000` where
// the request says `0001` ("Trojan Source").
const controls = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const controlsButLines = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escape(char: string): string {
  const code = char.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line of output: every control character escaped, newlines and tabs included. */
export function oneLine(text: string): string {
  return text.replace(controls, escape);
}

/** A block of text (a prompt, an answer): newlines and tabs kept, every other control character escaped. */
export function textBlock(text: string): string {
  return text.replace(controlsButLines, escape);
}
