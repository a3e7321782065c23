/** The shapes of the API's answers the page reads (no DOM here: the unit tests import it under Node). */

/** Execution statuses, in the order the page shows them. */
export const STATUSES = ['QUEUED', 'ACTIVE', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type Status = (typeof STATUSES)[number];

/** `GET /workflows` item. */
export interface WorkflowSummary {
  id: string;
  name: string;
  status: 'draft' | 'active' | 'paused';
  version: number;
  executions: Record<Status, number>;
  created_at: string;
}

/** Pagination of every list. */
export interface Pagination {
  total: number;
  page: number;
  limit: number;
  total_pages: number;
}

/** A page of a list. */
export interface Page<T> {
  data: T[];
  pagination: Pagination;
}

/** `GET /workflows/{id}`. */
export interface Workflow {
  id: string;
  name: string;
  status: 'draft' | 'active' | 'paused';
  version: number;
}

/** A step of a definition, as stored. */
export interface DefinitionStep {
  id: string;
  type: string;
  config?: Record<string, unknown>;
  branches?: Record<string, DefinitionStep[]>;
}

/** `GET /workflows/{id}/versions/{version}`. */
export interface WorkflowVersion {
  version: number;
  current: boolean;
  definition: { steps: DefinitionStep[]; goal?: { event: string } };
  machine: MachineConfig;
}

/** The compiled machine config as `GET /workflows/{id}/machine` gives it (the parts the page reads). */
export interface MachineConfig {
  id: string;
  initial: string;
  on?: Record<string, TransitionConfig>;
  states: Record<string, StateConfig>;
}
export interface StateConfig {
  type?: 'final';
  entry?: { type: string; params?: Record<string, unknown> };
  on?: Record<string, TransitionConfig>;
}
export type TransitionConfig =
  | string
  | { target: string; guard?: string; actions?: unknown; reenter?: boolean }
  | { target: string; guard?: string }[];

/** `POST /workflows/validate`: problems that are not errors, and figures of the definition's runs. */
export interface Validation {
  valid: boolean;
  warnings: { code: string; step_id?: string; message: string }[];
  figures: { longest_wait_seconds: number; max_messages_per_path: number; paths: number } | null;
}

/** `GET /workflows/{id}/stats`. */
export interface Stats {
  executions: Record<Status, number>;
  steps: {
    step_id: string;
    type: string;
    at_step: number;
    entered: number;
    completed: number;
    failed: number;
    skipped: number;
  }[];
  goal: { achieved: number; conversion_rate: number };
}

/** `GET /executions/{id}`. */
export interface Execution {
  id: string;
  workflow_id: string;
  contact_id: string;
  status: Status;
  current_step: string | null;
  current_step_index: number;
  total_steps: number;
  progress_percent: number;
  retry_count: number;
  completion_reason: string | null;
  last_error: string | null;
  next_run_at: string | null;
  created_at: string;
  updated_at: string;
  trace_id: string | null;
  /** The number of the version the execution runs on (`GET /executions/{id}` only). */
  workflow_version?: number;
  trace_url?: string | null;
}

/** `GET /executions/{id}/logs` entry. */
export interface LogEntry {
  id: string;
  event_type: string;
  step_index: number | null;
  step_id: string | null;
  status: string;
  timestamp: string;
  duration_ms: number | null;
  user_id: string | null;
  details: unknown;
}

/** Answer of the bulk operations. */
export interface BulkResult {
  matched: number;
  changed: number;
}
