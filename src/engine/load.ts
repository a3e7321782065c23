import type { CompiledWorkflow } from '../compiler/compile.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import type { EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

const include = {
  contact: true,
  account: true,
  workflow: { select: { name: true } },
} satisfies Prisma.ExecutionInclude;

/** An execution row with what one engine step needs: its contact, account settings and workflow name. */
export type ExecutionRow = Prisma.ExecutionGetPayload<{ include: typeof include }>;

/** An execution together with its compiled workflow. */
export interface LoadedExecution {
  row: ExecutionRow;
  workflow: CompiledWorkflow;
}

/** Loads an execution (optionally only within `accountId`), compiling its pinned workflow version on first use. */
export async function loadExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  executionId: string,
  accountId?: string,
): Promise<LoadedExecution | null> {
  const row = await deps.db.execution.findFirst({ where: { id: executionId, ...(accountId ? { accountId } : {}) }, include });
  if (!row) return null;
  let workflow = cache.get(row.workflowVersionId);
  if (!workflow) {
    const version = await deps.db.workflowVersion.findUniqueOrThrow({ where: { id: row.workflowVersionId } });
    workflow = cache.compile(version.id, version.definition);
  }
  return { row, workflow };
}
