import { compileWorkflow, type CompiledWorkflow } from '../compiler/compile.ts';
import { parseDefinition } from '../definition/schema.ts';
import { FlowmachineError } from '../errors.ts';
import type { Metrics } from '../observability/metrics.ts';
import { initialOf } from './snapshot.ts';

/**
 * Estimated heap bytes of a compiled version, from its definition's JSON length: measured at about
 * 45–56 bytes per character of definition plus a fixed part (a 500-step definition of 100 KB compiles to
 * about 4.4 MB), rounded up.
 */
export const estimateCompiledBytes = (definitionJsonLength: number) => 16_384 + 56 * definitionJsonLength;

/** Options of {@link WorkflowCache}. */
export interface WorkflowCacheOptions {
  /** Budget of the compiled versions kept, in estimated bytes. @defaultValue 256 MB */
  maxBytes?: number;
  /** Where evictions and the cache's size are reported. */
  metrics?: Pick<Metrics, 'workflowCacheEvictions' | 'workflowCacheBytes'>;
}

/** How many workflows' "latest version seen" the cache remembers. */
const LATEST_CAPACITY = 10_000;

/**
 * Compiled machines by workflow version id. Versions are immutable, so entries never go stale; the
 * cache is bounded by the estimated size of what it holds (least recently used first out), so a process
 * serving many large workflows stays within its budget. A version larger than the whole budget is
 * compiled and used but not kept.
 */
export class WorkflowCache {
  private readonly entries = new Map<string, { compiled: CompiledWorkflow; bytes: number }>();
  private readonly latest = new Map<string, string>();
  private readonly initials = new WeakMap<CompiledWorkflow, { snapshot: string; totalSteps: number }>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(private readonly options: WorkflowCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  }

  get(versionId: string): CompiledWorkflow | undefined {
    const entry = this.entries.get(versionId);
    if (!entry) return undefined;
    // Most recently used last: eviction takes from the front.
    this.entries.delete(versionId);
    this.entries.set(versionId, entry);
    return entry.compiled;
  }

  /** Estimated bytes held now. */
  get size(): number {
    return this.bytes;
  }

  /** The version of a workflow last seen current here: a guess, which the trigger checks in Postgres. */
  latestVersion(workflowId: string): string | undefined {
    return this.latest.get(workflowId);
  }

  sawLatestVersion(workflowId: string, versionId: string): void {
    if (!this.latest.has(workflowId) && this.latest.size >= LATEST_CAPACITY)
      this.latest.delete(this.latest.keys().next().value as string);
    this.latest.set(workflowId, versionId);
  }

  /**
   * A version's initial snapshot (stored form, as JSON) and step count: the same for each of its
   * executions, so worked out once per compiled version (about 80 µs each time otherwise).
   */
  initialOf(compiled: CompiledWorkflow): { snapshot: string; totalSteps: number } {
    let initial = this.initials.get(compiled);
    if (!initial) {
      const { snapshot, totalSteps } = initialOf(compiled);
      initial = { snapshot: JSON.stringify(snapshot), totalSteps };
      this.initials.set(compiled, initial);
    }
    return initial;
  }

  /** Compiles a stored definition (validated again: stored JSON is a boundary too). */
  compile(versionId: string, definition: unknown): CompiledWorkflow {
    const cached = this.get(versionId);
    if (cached) return cached;
    // No webhook address check here: a stored definition stays runnable when WEBHOOK_ALLOWED_HOSTS
    // changes; each webhook is checked when it is sent (providers/webhook-guard.ts).
    const parsed = parseDefinition(definition);
    if (!parsed.ok)
      throw new FlowmachineError(
        'invalid_stored_definition',
        `workflow version ${versionId} has an invalid definition`,
      );
    const compiled = compileWorkflow(parsed.definition);
    const bytes = estimateCompiledBytes(JSON.stringify(definition).length);
    if (bytes > this.maxBytes) return compiled;
    while (this.bytes + bytes > this.maxBytes) {
      const [oldest, entry] = this.entries.entries().next().value as [string, { bytes: number }];
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
      this.options.metrics?.workflowCacheEvictions.inc();
    }
    this.entries.set(versionId, { compiled, bytes });
    this.bytes += bytes;
    this.options.metrics?.workflowCacheBytes.set(this.bytes);
    return compiled;
  }
}
