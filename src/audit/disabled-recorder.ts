// `recording.enabled: false`: records nothing. It exists for `npm run bench` (bench/http.ts), which
// measures what recording costs; a production gateway must not run with it, since
// nothing would then be auditable.

import type { Recorder } from './recorder.js';

export const disabledRecorder: Recorder = {
  open: async () => undefined,
  progress: async () => undefined,
  finish: async () => undefined,
  refuse: async () => undefined,
  drain: async () => undefined,
};
