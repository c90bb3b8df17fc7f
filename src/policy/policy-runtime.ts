// The live policy of a running gateway: the compiled rules and limits, swapped as a
// whole on reload (config or policy file change, SIGHUP, admin API). An invalid policy
// never replaces a valid one: the reload fails with the error (rule and field named),
// the error is logged, and the running version stays. Approvals' per-rule options
// (reviewers, quorum, times) are handed on with it (`onReload`). Every change is reported to
// `onPolicyChange` with who made it, and logged.

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ConfigError, loadConfig, type GatehouseConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import { compilePolicy, PolicyError, type Policy } from './compile-policy.js';
import type { DetectEntities } from './eval-context.js';
import { createLimiter, type Limiter } from './limits/enforce-limits.js';
import type { LimitStore } from './limits/limit-store.js';
import { policyFiles, policySourceOf } from './load-policy.js';

export interface PolicyChangeEvent {
  readonly at: number;
  /** Who changed it: `admin:<subject>`, `signal:SIGHUP`, `file:<path>`. */
  readonly by: string;
  readonly previousVersion: string;
  readonly version: string;
  readonly ruleCount: number;
}

export interface PolicyReloadResult {
  readonly version: string;
  readonly previousVersion: string;
  readonly changed: boolean;
  /** Config paths that changed but apply only after a restart (see changesNeedingRestart). */
  readonly restartNeeded: readonly string[];
}

/** A reload that was refused; the running policy is unchanged. */
export class PolicyReloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyReloadError';
  }
}

export interface PolicyRuntimeOptions {
  readonly config: GatehouseConfig;
  /** The config file, re-read on reload and watched. Without it, only policy files are re-read. */
  readonly configFile?: string | undefined;
  readonly store: LimitStore;
  readonly logger: Logger;
  readonly detectEntities?: DetectEntities | undefined;
  readonly onPolicyChange?: ((event: PolicyChangeEvent) => void) | undefined;
  /**
   * Called with the config of every reload that was accepted, changed policy version or
   * not, for the parts that reload with the policy (approvals' per-rule options). Returns
   * the config paths that changed but need a restart, if it knows them.
   */
  readonly onReload?: ((config: GatehouseConfig, by: string) => readonly string[] | void) | undefined;
  /** Called when a reload is refused (the running policy stays), with who asked and why. */
  readonly onReloadRefused?: ((by: string, message: string) => void) | undefined;
  /** Watch the config and policy files for changes (default true when configFile is given). */
  readonly watch?: boolean;
  /** Refuse `approvals.rules` names that no require_approval rule has (default true; see policySourceOf). */
  readonly checkApprovals?: boolean;
}

export interface PolicyRuntime {
  /** Delegates to the current policy: safe to hand to the pipeline once. */
  readonly policy: Policy;
  readonly limits: Limiter;
  current(): Policy;
  reload(by: string): PolicyReloadResult;
  close(): void;
}

interface Compiled {
  readonly policy: Policy;
  readonly limiter: Limiter;
  readonly files: readonly string[];
}

export function createPolicyRuntime(options: PolicyRuntimeOptions): PolicyRuntime {
  const { logger, store } = options;
  // At most one line per 10 s, with how many failed since the last: during a Redis
  // outage every request a limit applies to fails, and a line each buried the rest of
  // the log. The outage and its end are logged by the dependency monitor (server/).
  let lastStoreErrorLog = 0;
  let unlogged = 0;
  const onStoreError = (error: unknown) => {
    unlogged += 1;
    if (Date.now() - lastStoreErrorLog < 10_000) return;
    lastStoreErrorLog = Date.now();
    logger.error({ failures: unlogged, err: String(error) }, 'limit store error');
    unlogged = 0;
  };
  const build = (config: GatehouseConfig): Compiled => ({
    policy: compilePolicy(policySourceOf(config, { checkApprovals: options.checkApprovals }), { detectEntities: options.detectEntities }),
    limiter: createLimiter(config.policy.limits.rules, store, config.policy.timezone, onStoreError),
    files: policyFiles(config),
  });

  let compiled = build(options.config);
  const watchers = new Map<string, { names: Set<string>; watcher: FSWatcher }>();
  let debounce: NodeJS.Timeout | undefined;

  const policy: Policy = {
    get version() {
      return compiled.policy.version;
    },
    get ruleCount() {
      return compiled.policy.ruleCount;
    },
    get ruleNames() {
      return compiled.policy.ruleNames;
    },
    decide: (exchange) => compiled.policy.decide(exchange),
    cacheableOn: (connection) => compiled.policy.cacheableOn(connection),
    explain: (exchange) => compiled.policy.explain(exchange),
    responseCheck: (names) => compiled.policy.responseCheck(names),
  };

  function reload(by: string): PolicyReloadResult {
    const previousVersion = compiled.policy.version;
    let next: Compiled;
    let config: GatehouseConfig;
    try {
      config = options.configFile ? loadConfig(options.configFile) : options.config;
      next = build(config);
    } catch (error) {
      const message = error instanceof ConfigError ? error.message : error instanceof PolicyError ? error.message : `${(error as Error).name}: ${(error as Error).message}`;
      logger.error({ by, policyVersion: previousVersion, error: message }, 'policy reload refused; the running policy is unchanged');
      try {
        options.onReloadRefused?.(by, message);
      } catch (failure) {
        logger.error({ err: String(failure) }, 'onReloadRefused failed');
      }
      throw new PolicyReloadError(message);
    }
    const changed = next.policy.version !== previousVersion;
    compiled = next;
    if (watching) arm();
    let restartNeeded: readonly string[] = [];
    try {
      restartNeeded = options.onReload?.(config, by) ?? [];
    } catch (error) {
      logger.error({ err: String(error) }, 'onReload failed');
    }
    if (changed) {
      const event: PolicyChangeEvent = { at: Date.now(), by, previousVersion, version: next.policy.version, ruleCount: next.policy.ruleCount };
      logger.info({ ...event }, 'policy changed');
      try {
        options.onPolicyChange?.(event);
      } catch (error) {
        logger.error({ err: String(error) }, 'onPolicyChange failed');
      }
    }
    return { version: next.policy.version, previousVersion, changed, restartNeeded };
  }

  // Watch directories, not files: editors replace a file by renaming over it, which
  // ends a watch on the file itself. Watchers are kept across reloads (only the names
  // they look for are updated): closing one could drop an event it had not read yet.
  function arm(): void {
    const files = [...(options.configFile ? [options.configFile] : []), ...compiled.files];
    const wanted = new Map<string, Set<string>>();
    for (const file of files) wanted.set(dirname(file), (wanted.get(dirname(file)) ?? new Set()).add(basename(file)));
    for (const [dir, entry] of watchers) {
      if (!wanted.has(dir)) {
        entry.watcher.close();
        watchers.delete(dir);
      }
    }
    for (const [dir, names] of wanted) {
      const existing = watchers.get(dir);
      if (existing) {
        existing.names = names;
        continue;
      }
      try {
        const entry = { names, watcher: undefined as unknown as FSWatcher };
        entry.watcher = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || !entry.names.has(name.toString())) return;
          clearTimeout(debounce);
          debounce = setTimeout(() => {
            try {
              reload(`file:${dir}/${name.toString()}`);
            } catch {
              // logged by reload
            }
          }, 150);
          debounce.unref();
        });
        entry.watcher.on('error', (error) => logger.warn({ dir, err: String(error) }, 'policy file watch failed'));
        watchers.set(dir, entry);
      } catch (error) {
        logger.warn({ dir, err: String(error) }, 'cannot watch policy files; reload with SIGHUP or the admin API');
      }
    }
  }

  const watching = options.watch ?? options.configFile !== undefined;
  if (watching) arm();

  return {
    policy,
    limits: { admit: (exchange) => compiled.limiter.admit(exchange) },
    current: () => compiled.policy,
    reload,
    close() {
      clearTimeout(debounce);
      for (const { watcher } of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
