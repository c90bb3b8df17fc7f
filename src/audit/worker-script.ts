// Where a worker thread's entry module is: the built .js beside the caller, or, when
// the caller itself runs as TypeScript under tsx (tests), the .ts source loaded through
// tsx's loader.

/** The worker entry `name` (without extension) beside the module at `base` (its import.meta.url). */
export function workerScript(base: string, name: string): URL {
  if (!base.endsWith('.ts')) return new URL(`./${name}.js`, base);
  const entry = new URL(`./${name}.ts`, base);
  return new URL(`data:text/javascript,import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(entry.href)});`);
}
