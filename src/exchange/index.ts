export type * from './types.js';
export { newId } from './ids.js';
