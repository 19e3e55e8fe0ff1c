// Native mounts: paths of a tenant's tree served straight from a host directory
// (docs/native-mounts.md). This module is the pure part, shared by the config loader, the CLI
// and the shim: checking a definition, expanding {tenant}/{tenant_id}, choosing the winner
// among definitions of one path, and routing a FUSE path to its mount (longest path wins).
// It touches no filesystem except to check that a source exists or can be created.

import fs from 'node:fs';
import path from 'node:path';

export interface NativeMountSpec {
  readonly path: string;
  readonly source: string;
  readonly mode: 'ro' | 'rw';
  readonly shared: boolean;
  readonly priority: number;
}

/** Where a definition came from: the config file applies to every tenant, the database to one. */
export type NativeMountOrigin = 'config' | 'tenant';

export interface ResolvedNativeMount extends NativeMountSpec {
  readonly origin: NativeMountOrigin;
  /** The source with {tenant} and {tenant_id} expanded for the mounted tenant. */
  readonly hostPath: string;
}

const PLACEHOLDER = /\{([^}]*)\}/g;
export const PRIORITY_RANGE = 1_000_000;

/** A mount path: absolute, normalized, not "/" and not inside the control directory /.tarbox. */
export function checkMountPath(p: unknown): string | null {
  if (typeof p !== 'string' || !p.startsWith('/') || p === '/' || p.endsWith('/') || path.posix.normalize(p) !== p) {
    return `path: expected an absolute, normalized path other than "/", got ${show(p)}`;
  }
  if (p === '/.tarbox' || p.startsWith('/.tarbox/')) return `path: ${show(p)} is inside the control directory /.tarbox`;
  if (p.includes('\0')) return 'path: contains a NUL byte';
  return null;
}

/**
 * A source: absolute, normalized, not "/", only the {tenant} and {tenant_id} placeholders, each
 * filling a whole path component (so no expansion can produce ".." or a slash), and the same
 * directory for every tenant (no placeholder) only when read-only or explicitly shared.
 */
export function checkSource(source: unknown, mode: 'ro' | 'rw', shared: boolean): string | null {
  if (typeof source !== 'string' || !source.startsWith('/')) return `source: expected an absolute path, got ${show(source)}`;
  for (const m of source.matchAll(PLACEHOLDER)) {
    if (m[1] !== 'tenant' && m[1] !== 'tenant_id') return `source: unknown placeholder {${m[1]}} (use {tenant} or {tenant_id})`;
  }
  if (source.includes('\0')) return 'source: contains a NUL byte';
  if (path.posix.normalize(source) !== source || (source.endsWith('/') && source !== '/')) {
    return `source: expected a normalized path (no ".", "..", "//" or trailing "/"), got ${show(source)}`;
  }
  if (source === '/') return 'source: "/" would expose the whole host';
  const parts = source.split('/');
  if (parts.some((c) => c.includes('{') && !/^\{(tenant|tenant_id)\}$/.test(c))) {
    return `source: a placeholder must be a whole path component (like /srv/{tenant}), got ${show(source)}`;
  }
  if (mode === 'rw' && !shared && !/\{tenant(_id)?\}/.test(source)) {
    return `source: every tenant would write the same directory ${show(source)}: add {tenant} or {tenant_id}, or set shared = true`;
  }
  return null;
}

/** Exists as a directory, or its nearest existing ancestor is one (so it can be created). */
export function checkSourceOnHost(source: string): string | null {
  let dir = source.split('/{')[0] || '/';
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return `source: ${dir}: ${code}`;
    }
    if (st) return st.isDirectory() ? null : `source: ${dir} exists and is not a directory`;
    dir = path.dirname(dir);
  }
}

/** Every check of one definition; the first failure as a message, or null. */
export function checkNativeMount(spec: NativeMountSpec): string | null {
  if (spec.mode !== 'ro' && spec.mode !== 'rw') return `mode: expected one of "ro", "rw", got ${show(spec.mode)}`;
  if (!Number.isInteger(spec.priority) || Math.abs(spec.priority) > PRIORITY_RANGE) {
    return `priority: expected an integer from ${-PRIORITY_RANGE} to ${PRIORITY_RANGE}, got ${show(spec.priority)}`;
  }
  return checkMountPath(spec.path) ?? checkSource(spec.source, spec.mode, spec.shared) ?? checkSourceOnHost(spec.source);
}

export function expandSource(source: string, tenant: string, tenantId: number): string {
  return source.replace(/\{tenant_id\}/g, String(tenantId)).replace(/\{tenant\}/g, tenant);
}

/**
 * The mounts in effect for a tenant: for each path the definition with the highest priority.
 * Config and tenant definitions of one path with one priority are ambiguous: the config one
 * wins and `conflicts` says so (the CLI refuses to add such an entry in the first place).
 */
export function resolveNativeMounts(config: readonly NativeMountSpec[], tenantRows: readonly NativeMountSpec[],
  tenant: string, tenantId: number): { mounts: ResolvedNativeMount[]; shadowed: ResolvedNativeMount[]; conflicts: string[] } {
  const all: ResolvedNativeMount[] = [
    ...config.map((s) => ({ ...s, origin: 'config' as const, hostPath: expandSource(s.source, tenant, tenantId) })),
    ...tenantRows.map((s) => ({ ...s, origin: 'tenant' as const, hostPath: expandSource(s.source, tenant, tenantId) })),
  ];
  const best = new Map<string, ResolvedNativeMount>();
  const shadowed: ResolvedNativeMount[] = [];
  const conflicts: string[] = [];
  for (const m of all) {
    const held = best.get(m.path);
    if (held && held.priority === m.priority) {
      conflicts.push(`native mount ${m.path} (priority ${m.priority}) is defined by the config file and for the tenant: the config file's wins`);
      shadowed.push(m);
    } else if (!held || m.priority > held.priority) {
      if (held) shadowed.push(held);
      best.set(m.path, m);
    } else {
      shadowed.push(m);
    }
  }
  return { mounts: [...best.values()], shadowed, conflicts };
}

/** Longest-path routing. A path inside a mount yields the mount and the path below it ('' for its root). */
export class NativeRoutes<M extends { path: string }> {
  private readonly byLength: M[];
  /** Every strict ancestor of a mount path -> the names of its children that lead to mounts. */
  private readonly ancestors = new Map<string, Set<string>>();

  constructor(readonly mounts: readonly M[]) {
    this.byLength = [...mounts].sort((a, b) => b.path.length - a.path.length);
    for (const m of mounts) {
      let child = m.path;
      while (child !== '/') {
        const parent = path.posix.dirname(child);
        let names = this.ancestors.get(parent);
        if (!names) this.ancestors.set(parent, (names = new Set()));
        names.add(path.posix.basename(child));
        child = parent;
      }
    }
  }

  get empty(): boolean {
    return this.mounts.length === 0;
  }

  route(p: string): { mount: M; rel: string } | undefined {
    for (const m of this.byLength) {
      if (p === m.path) return { mount: m, rel: '' };
      if (p.length > m.path.length && p.startsWith(m.path) && p[m.path.length] === '/') {
        return { mount: m, rel: p.slice(m.path.length + 1) };
      }
    }
    return undefined;
  }

  /** Names in directory p that lead to a mount (mount points, or directories above deeper ones). */
  childrenOf(p: string): ReadonlySet<string> | undefined {
    return this.ancestors.get(p);
  }
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
