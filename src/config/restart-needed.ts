// A reload (config file change, SIGHUP, POST /api/policy/reload) applies the policy and
// approvals' per-rule options only. Everything else in a re-read config keeps its value
// from start; this names what differs so the operator is told a restart is needed
// instead of believing the edit took effect.
import { isDeepStrictEqual } from 'node:util';
import type { GatehouseConfig } from './schema.js';

/** Keys of `approvals` that reload with the policy. */
const reloadableApprovals = new Set(['defaults', 'rules', 'adminsMayReview']);

/**
 * Config paths (`gateway`, `connections.<name>`, `policy.limits.store`, …) whose value in
 * `next` differs from the running config and that only a restart applies. Paths only,
 * never values: the config holds resolved secrets.
 */
export function changesNeedingRestart(running: GatehouseConfig, next: GatehouseConfig): string[] {
  const changed: string[] = [];
  const keys = new Set([...Object.keys(running), ...Object.keys(next)] as (keyof GatehouseConfig)[]);
  for (const key of keys) {
    if (key === 'policy') {
      for (const part of ['store', 'redis'] as const) {
        if (!isDeepStrictEqual(running.policy.limits[part], next.policy.limits[part])) changed.push(`policy.limits.${part}`);
      }
    } else if (key === 'approvals') {
      if (!isDeepStrictEqual(withoutReloadable(running.approvals), withoutReloadable(next.approvals))) changed.push('approvals');
    } else if (key === 'connections') {
      changed.push(...changedConnections(running.connections, next.connections));
    } else if (!isDeepStrictEqual(running[key], next[key])) {
      changed.push(key);
    }
  }
  return changed;
}

/**
 * The paths under `approvals` (`defaults`, `adminsMayReview`, `rules.<rule>`) a reload
 * changes in place: who reviews what, for how long. Paths only, as above.
 */
export function changedReviewRules(running: GatehouseConfig['approvals'], next: NonNullable<GatehouseConfig['approvals']>): string[] {
  if (!running) return [];
  const changed = (['defaults', 'adminsMayReview'] as const).filter((key) => !isDeepStrictEqual(running[key], next[key]));
  const rules = new Set([...Object.keys(running.rules), ...Object.keys(next.rules)]);
  return [...changed, ...[...rules].filter((rule) => !isDeepStrictEqual(running.rules[rule], next.rules[rule])).map((rule) => `rules.${rule}`)];
}

function withoutReloadable(approvals: GatehouseConfig['approvals']): Record<string, unknown> | undefined {
  if (!approvals) return undefined;
  return Object.fromEntries(Object.entries(approvals).filter(([name]) => !reloadableApprovals.has(name)));
}

function changedConnections(running: GatehouseConfig['connections'], next: GatehouseConfig['connections']): string[] {
  const before = new Map(running.map((c) => [c.name, c]));
  const after = new Map(next.map((c) => [c.name, c]));
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => !isDeepStrictEqual(before.get(name), after.get(name))).map((name) => `connections.${name}`);
}
