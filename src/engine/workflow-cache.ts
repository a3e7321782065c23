import { compileWorkflow, type CompiledWorkflow } from '../compiler/compile.ts';
import { parseDefinition } from '../definition/schema.ts';
import { FlowmachineError } from '../errors.ts';

/**
 * Compiled machines by workflow version id. Versions are immutable, so entries never go stale;
 * the cache is bounded so a process serving many workflows does not grow without limit.
 */
export class WorkflowCache {
  private readonly entries = new Map<string, CompiledWorkflow>();
  private readonly latest = new Map<string, string>();

  constructor(private readonly capacity = 1_000) {}

  get(versionId: string): CompiledWorkflow | undefined {
    return this.entries.get(versionId);
  }

  /** The version of a workflow last seen current here: a guess, which the trigger checks in Postgres. */
  latestVersion(workflowId: string): string | undefined {
    return this.latest.get(workflowId);
  }

  sawLatestVersion(workflowId: string, versionId: string): void {
    if (!this.latest.has(workflowId) && this.latest.size >= this.capacity) this.latest.delete(this.latest.keys().next().value as string);
    this.latest.set(workflowId, versionId);
  }

  /** Compiles a stored definition (validated again: stored JSON is a boundary too). */
  compile(versionId: string, definition: unknown): CompiledWorkflow {
    const cached = this.entries.get(versionId);
    if (cached) return cached;
    const parsed = parseDefinition(definition);
    if (!parsed.ok) throw new FlowmachineError('invalid_stored_definition', `workflow version ${versionId} has an invalid definition`);
    const compiled = compileWorkflow(parsed.definition);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(versionId, compiled);
    return compiled;
  }
}
