import type { Request } from 'express';
import type { Pool, PrismaClient } from '../db/client.ts';
import type { EngineDeps } from '../engine/types.ts';
import type { WorkflowCache } from '../engine/workflow-cache.ts';
import type { StepQueue } from '../queue/step-queue.ts';

/** What the API needs: the engine's dependencies and its machine cache. */
export interface ApiDeps extends EngineDeps {
  /** The ORM, for the API's reads and writes of accounts, contacts and workflows. */
  db: PrismaClient;
  /** The same connections without the ORM, for the API's statements on hot paths (src/sql/). */
  pool: Pool;
  /** The BullMQ queue itself (its job counts feed `/metrics`). */
  queue: StepQueue;
  cache: WorkflowCache;
  /** Checks Postgres and Redis for `/health`. */
  health(): Promise<{ postgres: boolean; redis: boolean }>;
}

/** The authenticated caller, set by the auth middleware. */
export interface Caller {
  accountId: string;
  userId: string;
  apiKeyId: string;
  /** `admin` keys manage keys and account settings; `member` keys do everything else. */
  role: KeyRole;
}

/** Roles of API keys. */
export const KEY_ROLES = ['admin', 'member'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

/** The caller of an authenticated request. */
export function callerOf(request: Request): Caller {
  return (request as Request & { caller: Caller }).caller;
}
