// Recorded values reach the operator's terminal: a prompt, an answer, a justification
// header, an IdP's subject claim. Control characters in them (ESC starts a terminal
// escape sequence, CR and LF start a line the caller chose) are shown escaped, as
// `\x1b`, so what the CLI prints is only ever text, never a command to the terminal
// or a forged row of a table.

// C0 controls, DEL and C1 controls (U+0080-U+009F: U+009B is CSI on some terminals).
const controls = /[\u0000-\u001f\u007f-\u009f]/g;
const controlsButLines = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

function escape(char: string): string {
  return `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** One line of output: every control character escaped, newlines and tabs included. */
export function oneLine(text: string): string {
  return text.replace(controls, escape);
}

/** A block of text (a prompt, an answer): newlines and tabs kept, every other control character escaped. */
export function textBlock(text: string): string {
  return text.replace(controlsButLines, escape);
}
