import type { Effect } from '../compiler/compile.ts';
import { capsOf, channelOf } from '../definition/frequency-caps.ts';
import type { ActionStep } from '../definition/schema.ts';
import { withSpan } from '../observability/tracing.ts';
import type { EffectOutcome } from './decide-step.ts';
import type { EngineDeps, LoadedExecution } from './types.ts';

/**
 * The I/O half of the machine's effects (the pure half, what each outcome changes, is decide-step.ts).
 * Only `executeAction` reaches outside: it calls the step's provider through `deps.actions`. A condition
 * reads only the loaded contact, a timer only the clock the decision is given, and a final state's effect
 * is resolved in the commit that enters it, so they execute nothing.
 */
export async function executeEffect(deps: EngineDeps, loaded: LoadedExecution, effect: Effect): Promise<EffectOutcome> {
  if (effect.type !== 'executeAction') return { kind: 'none' };
  const step = loaded.workflow.steps.get(effect.params.stepId)!.step as ActionStep;
  const { row } = loaded;
  const capped = await checkCaps(deps, loaded, step);
  if (capped) return capped;
  const startedAt = deps.clock.now();
  const started = performance.now();
  const result = await withSpan(
    `action ${step.type}`,
    {
      'flowmachine.execution_id': row.id,
      'flowmachine.workflow_id': row.workflowId,
      'flowmachine.workflow_version_id': row.workflowVersionId,
      'flowmachine.step_id': step.id,
      'flowmachine.action_type': step.type,
      'flowmachine.attempt': row.retryCount + 1,
    },
    async (span) => {
      const outcome = await deps.actions.run(step, {
        accountId: row.accountId,
        executionId: row.id,
        stepId: step.id,
        contact: { ...row.contact, attributes: (row.contact.attributes ?? {}) as Record<string, unknown> },
        payload: (row.payload ?? {}) as Record<string, unknown>,
      });
      span.setAttribute('flowmachine.outcome', outcome.kind);
      return outcome;
    },
  );
  const durationMs = Math.round(performance.now() - started);
  deps.metrics.actionDuration.observe({ action_type: step.type, outcome: result.kind }, durationMs / 1000);
  return { kind: 'action', result, startedAt, durationMs, actionType: step.type };
}

/**
 * The frequency caps of a message step, checked and counted in one Postgres call before the provider is
 * called (the count is exact under any number of workers). Only an account with caps on the step's
 * channel pays for it, and a `"transactional": true` step bypasses them. Returns the outcome of a capped
 * message, or null when it may be sent (and is counted).
 */
async function checkCaps(deps: EngineDeps, { row }: LoadedExecution, step: ActionStep): Promise<EffectOutcome | null> {
  const channel = channelOf(step.type);
  if (!channel || ('transactional' in step.config && step.config.transactional)) return null;
  // A message the action will not send (opted out, no phone number) is not counted.
  if (!row.contact.optedIn || (channel === 'sms' && !row.contact.phone)) return null;
  const caps = capsOf(row.account.frequencyCaps, channel);
  if (caps.length === 0) return null;
  const resumeAt = await deps.store.capSend({
    accountId: row.accountId,
    contactId: row.contactId,
    channel,
    executionId: row.id,
    stepId: step.id,
    caps,
    now: deps.clock.now(),
  });
  return resumeAt ? { kind: 'capped', channel, resumeAt } : null;
}
