import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type PrismaClient } from '../../src/db/client.ts';
import { MIGRATIONS_DIR, migrate } from '../../src/db/migrate.ts';
import { Prisma } from '../../src/generated/prisma/client.ts';
import { createTestDatabase } from '../helpers/database.ts';

// schema.prisma and the SQL migrations must agree: every model is readable and writable through the
// client, with every field, and the tables have no column the client does not know.
describe('schema.prisma agrees with the SQL migrations', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: PrismaClient;
  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb(database.url);
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  const TABLES: Record<Prisma.ModelName, { table: string; fields: Record<string, string> }> = {
    Account: { table: 'accounts', fields: Prisma.AccountScalarFieldEnum },
    AccountSlot: { table: 'account_slots', fields: Prisma.AccountSlotScalarFieldEnum },
    User: { table: 'users', fields: Prisma.UserScalarFieldEnum },
    ApiKey: { table: 'api_keys', fields: Prisma.ApiKeyScalarFieldEnum },
    Contact: { table: 'contacts', fields: Prisma.ContactScalarFieldEnum },
    Workflow: { table: 'workflows', fields: Prisma.WorkflowScalarFieldEnum },
    WorkflowVersion: { table: 'workflow_versions', fields: Prisma.WorkflowVersionScalarFieldEnum },
    Execution: { table: 'executions', fields: Prisma.ExecutionScalarFieldEnum },
    ExecutionLog: { table: 'execution_logs', fields: Prisma.ExecutionLogScalarFieldEnum },
    ContactEvent: { table: 'contact_events', fields: Prisma.ContactEventScalarFieldEnum },
    IdempotencyKey: { table: 'idempotency_keys', fields: Prisma.IdempotencyKeyScalarFieldEnum },
    MessageSend: { table: 'message_sends', fields: Prisma.MessageSendScalarFieldEnum },
    LogRetention: { table: 'log_retention', fields: Prisma.LogRetentionScalarFieldEnum },
    WorkflowCount: { table: 'workflow_counts', fields: Prisma.WorkflowCountScalarFieldEnum },
    WorkflowCountDelta: { table: 'workflow_count_deltas', fields: Prisma.WorkflowCountDeltaScalarFieldEnum },
  };

  it('covers every model', () => {
    expect(Object.keys(TABLES).sort()).toEqual(Object.values(Prisma.ModelName).sort());
  });

  it('writes and reads every field of every model', async () => {
    const now = new Date('2026-05-05T05:05:05.555Z');
    const account = await db.account.create({
      data: {
        name: 'A',
        adminEmail: 'a@example.com',
        concurrentExecutionsPerAccount: 7,
        maxRetryAttempts: 2,
        retryBaseDelaySeconds: 30,
        errorNotification: false,
        defaultTimezone: 'Europe/Berlin',
        frequencyCaps: [{ channel: 'email', max: 2, per: '1 day', per_ms: 86_400_000 }],
        createdAt: now,
        updatedAt: now,
      },
    });
    // Shard 0 is created with the account (its limit is below 128); another one is written here.
    const slot = await db.accountSlot.create({ data: { accountId: account.id, shard: 5, used: 2, quota: 3 } });
    const user = await db.user.create({
      data: { accountId: account.id, email: 'u@example.com', role: 'admin', createdAt: now },
    });
    const key = await db.apiKey.create({
      data: {
        accountId: account.id,
        userId: user.id,
        keyHash: 'h',
        prefix: 'fm_abcd',
        name: 'k',
        createdAt: now,
        revokedAt: now,
      },
    });
    const contact = await db.contact.create({
      data: {
        accountId: account.id,
        email: 'c@example.com',
        phone: '+1555',
        optedIn: false,
        timezone: 'Europe/Paris',
        attributes: { plan: 'pro' },
        tags: ['VIP'],
        deletedAt: now,
        createdAt: now,
        updatedAt: now,
      },
    });
    const workflow = await db.workflow.create({
      data: { accountId: account.id, name: 'W', status: 'active', currentVersion: 2, createdAt: now, updatedAt: now },
    });
    const version = await db.workflowVersion.create({
      data: { workflowId: workflow.id, version: 2, definition: { steps: [] }, createdAt: now },
    });
    const execution = await db.execution.create({
      data: {
        accountId: account.id,
        workflowId: workflow.id,
        workflowVersionId: version.id,
        contactId: contact.id,
        status: 'PAUSED',
        snapshot: { value: 'x', context: {} },
        version: 3,
        currentStepIndex: 1,
        totalSteps: 4,
        retryCount: 2,
        completionReason: 'r',
        lastError: 'e',
        goalEvent: 'g',
        nextRunAt: now,
        waiting: true,
        slotShard: 2,
        notifyPending: true,
        notifyAttempts: 2,
        notifyAfter: now,
        payload: { a: 1 },
        createdAt: now,
        updatedAt: now,
        finishedAt: now,
      },
    });
    const log = await db.executionLog.create({
      data: {
        executionId: execution.id,
        accountId: account.id,
        workflowId: workflow.id,
        contactId: contact.id,
        eventType: 't',
        stepIndex: 1,
        stepId: 's',
        status: 'S',
        timestamp: now,
        durationMs: 5,
        userId: user.id,
        details: { d: 1 },
      },
    });
    const event = await db.contactEvent.create({
      data: {
        accountId: account.id,
        contactId: contact.id,
        name: 'order_placed',
        properties: { total: 12 },
        createdAt: now,
      },
    });
    const idempotencyKey = await db.idempotencyKey.create({
      data: {
        accountId: account.id,
        route: 'POST /workflows/{id}/trigger',
        key: 'k-1',
        requestHash: 'h',
        statusCode: 202,
        body: { execution_id: 'x' },
        createdAt: now,
      },
    });
    const retention = await db.logRetention.create({
      data: { tableName: 'execution_logs', prunedBefore: now, partitionsDropped: 2, rowsKept: 3, updatedAt: now },
    });
    const send = await db.messageSend.create({
      data: {
        executionId: execution.id,
        stepId: 's',
        accountId: account.id,
        contactId: contact.id,
        channel: 'email',
        sentAt: now,
      },
    });

    const selectAll = (fields: Record<string, string>) => Object.fromEntries(Object.keys(fields).map((f) => [f, true]));
    const reads = {
      Account: await db.account.findUniqueOrThrow({
        where: { id: account.id },
        select: selectAll(TABLES.Account.fields),
      }),
      AccountSlot: await db.accountSlot.findUniqueOrThrow({
        where: { accountId_shard: { accountId: account.id, shard: 5 } },
        select: selectAll(TABLES.AccountSlot.fields),
      }),
      User: await db.user.findUniqueOrThrow({ where: { id: user.id }, select: selectAll(TABLES.User.fields) }),
      ApiKey: await db.apiKey.findUniqueOrThrow({ where: { id: key.id }, select: selectAll(TABLES.ApiKey.fields) }),
      Contact: await db.contact.findUniqueOrThrow({
        where: { id: contact.id },
        select: selectAll(TABLES.Contact.fields),
      }),
      Workflow: await db.workflow.findUniqueOrThrow({
        where: { id: workflow.id },
        select: selectAll(TABLES.Workflow.fields),
      }),
      WorkflowVersion: await db.workflowVersion.findUniqueOrThrow({
        where: { id: version.id },
        select: selectAll(TABLES.WorkflowVersion.fields),
      }),
      Execution: await db.execution.findUniqueOrThrow({
        where: { id: execution.id },
        select: selectAll(TABLES.Execution.fields),
      }),
      ExecutionLog: await db.executionLog.findUniqueOrThrow({
        where: { id_timestamp: { id: log.id, timestamp: now } },
        select: selectAll(TABLES.ExecutionLog.fields),
      }),
      ContactEvent: await db.contactEvent.findUniqueOrThrow({
        where: { id_createdAt: { id: event.id, createdAt: now } },
        select: selectAll(TABLES.ContactEvent.fields),
      }),
      IdempotencyKey: await db.idempotencyKey.findUniqueOrThrow({
        where: { accountId_route_key: { accountId: account.id, route: 'POST /workflows/{id}/trigger', key: 'k-1' } },
        select: selectAll(TABLES.IdempotencyKey.fields),
      }),
      LogRetention: await db.logRetention.findUniqueOrThrow({
        where: { tableName: 'execution_logs' },
        select: selectAll(TABLES.LogRetention.fields),
      }),
      MessageSend: await db.messageSend.findUniqueOrThrow({
        where: { executionId_stepId: { executionId: execution.id, stepId: 's' } },
        select: selectAll(TABLES.MessageSend.fields),
      }),
    };
    expect(reads.Account).toEqual(account);
    expect(reads.AccountSlot).toEqual(slot);
    expect(reads.User).toEqual(user);
    expect(reads.ApiKey).toEqual(key);
    expect(reads.Contact).toEqual(contact);
    expect(reads.Workflow).toEqual(workflow);
    expect(reads.WorkflowVersion).toEqual(version);
    expect(reads.Execution).toEqual(execution);
    expect(reads.ExecutionLog).toEqual(log);
    expect(reads.ContactEvent).toEqual(event);
    expect(reads.IdempotencyKey).toEqual(idempotencyKey);
    expect(reads.MessageSend).toEqual(send);
    expect(reads.LogRetention).toEqual(retention);
    expect((reads.Execution as unknown as { nextRunAt: Date }).nextRunAt.toISOString()).toBe(now.toISOString()); // millisecond precision
  });

  it('has no column the client does not know', async () => {
    for (const { table, fields } of Object.values(TABLES)) {
      const columns = await db.$queryRaw<
        { column_name: string }[]
      >`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ${table}`;
      expect(columns.length, table).toBe(Object.keys(fields).length);
    }
  });

  it('records applied migrations the way Prisma Migrate does', async () => {
    const rows = await db.$queryRaw<
      { migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }[]
    >`
      SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`;
    const names = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(rows.map((r) => r.migration_name)).toEqual(names);
    for (const row of rows) {
      const sql = await readFile(path.join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'), 'utf8');
      expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
      expect(row.finished_at).not.toBeNull();
    }
    expect(await migrate(database.url)).toEqual({ migrations: [], baselined: [], functions: [] }); // idempotent
  });
});
