import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import {
  claimIdempotencyKey,
  IDEMPOTENCY_CLAIM_LEASE_MS,
  IDEMPOTENCY_TTL_MS,
  IDEMPOTENT_ROUTES,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  purgeExpiredIdempotencyKeys,
  releaseIdempotencyKey,
  requestHash,
  storeIdempotentAnswer,
} from '../../src/api/idempotency.ts';
import { createManualClock } from '../../src/clock.ts';
import { startHarness, type ApiResponse, type Harness } from '../helpers/harness.ts';

// The API parts of journeys, through real HTTP against the real Postgres and Redis: the account's
// default_timezone, stored contact events, and Idempotency-Key on trigger and events. No worker runs,
// so executions stay QUEUED and every count below is exact; the clock only moves when a test moves it.

const tagStep = { reentry: 'always', steps: [{ id: 'tag', type: 'add_tag', config: { tag: 'done' } }] };

describe('journeys API', () => {
  const clock = createManualClock(new Date('2026-06-01T09:00:00.000Z'));
  let h: Harness;
  let workflowId: string;

  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
    workflowId = (await h.createWorkflow(tagStep)).id;
  });
  afterAll(() => h?.stop());

  /** POST with an Idempotency-Key (or, with `key` undefined, without one). */
  const post = (path: string, body: unknown, key?: string, apiKey?: string): Promise<ApiResponse> =>
    h.api.raw('POST', `/api/v1${path}`, body, key === undefined ? {} : { 'idempotency-key': key }, apiKey);
  const executionsOf = (contactId: string) => h.db.execution.count({ where: { workflowId, contactId } });
  let keys = 0;
  /** A key no other test uses. */
  const freshKey = () => `key-${Date.now()}-${(keys += 1)}`;

  describe('account default_timezone', () => {
    it('is UTC by default, and read and set through /account/settings', async () => {
      expect((await h.api.get('/account/settings')).body.default_timezone).toBe('UTC');
      const patched = await h.api.patch('/account/settings', { default_timezone: 'America/New_York' });
      expect(patched.status).toBe(200);
      expect(patched.body.default_timezone).toBe('America/New_York');
      expect((await h.api.get('/account/settings')).body.default_timezone).toBe('America/New_York');
      const row = await h.db.account.findUniqueOrThrow({ where: { id: h.account.account_id } });
      expect(row.defaultTimezone).toBe('America/New_York');
      await h.api.patch('/account/settings', { default_timezone: 'UTC' });
    });

    it.each([
      ['an unknown zone', 'Mars/Olympus_Mons'],
      ['an offset', '+02:00'],
      ['an empty name', ''],
      ['a number', 5],
      ['null', null],
    ])('refuses %s with 400 at body.default_timezone and keeps the setting', async (_, value) => {
      const response = await h.api.patch('/account/settings', { default_timezone: value });
      expect(response.status).toBe(400);
      expect(response.body.issues).toEqual([{ path: 'body.default_timezone', message: expect.any(String) }]);
      expect((await h.api.get('/account/settings')).body.default_timezone).toBe('UTC');
    });

    it('says what a zone must be', async () => {
      const response = await h.api.patch('/account/settings', { default_timezone: 'Europe/Atlantis' });
      expect(response.body.issues[0].message).toMatch(/valid IANA time zone name/);
    });
  });

  describe('POST /contacts/{id}/events stores the event', () => {
    it('keeps name, properties, account, contact and time, and answers the stored id', async () => {
      const contact = await h.createContact();
      const response = await h.api.post(`/contacts/${contact.id}/events`, {
        name: 'order_placed',
        properties: { total: 42, items: ['a'] },
      });
      expect(response.status).toBe(202);
      expect(response.body).toEqual({
        accepted: true,
        event: 'order_placed',
        event_id: expect.any(String),
        enrolled: [],
        blocked: [],
        resumed: [],
        goals: [],
        exited: [],
        goal_completed_executions: [],
      });
      const row = await h.db.contactEvent.findFirstOrThrow({ where: { id: response.body.event_id } });
      expect(row).toEqual({
        id: response.body.event_id,
        accountId: h.account.account_id,
        contactId: contact.id,
        name: 'order_placed',
        properties: { total: 42, items: ['a'] },
        createdAt: clock.now(),
      });
    });

    it('stores an event without properties with empty properties', async () => {
      const contact = await h.createContact();
      const response = await h.api.post(`/contacts/${contact.id}/events`, { name: 'signed_up' });
      expect(response.status).toBe(202);
      const row = await h.db.contactEvent.findFirstOrThrow({ where: { id: response.body.event_id } });
      expect(row.properties).toEqual({});
    });

    it('stores nothing for an unknown contact (404) or an invalid event (400)', async () => {
      const before = await h.db.contactEvent.count();
      const unknown = await h.api.post('/contacts/00000000-0000-4000-8000-000000000000/events', { name: 'x' });
      expect(unknown.status).toBe(404);
      const contact = await h.createContact();
      const tooLong = await h.api.post(`/contacts/${contact.id}/events`, { name: 'e'.repeat(101) });
      expect(tooLong.status).toBe(400);
      expect(tooLong.body.issues.map((issue: { path: string }) => issue.path)).toEqual(['body.name']);
      expect(await h.db.contactEvent.count()).toBe(before);
    });
  });

  describe('Idempotency-Key on POST /workflows/{id}/trigger', () => {
    it('answers a repeat with the first answer and creates one execution', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const first = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect(first.status).toBe(202);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      for (let i = 0; i < 3; i += 1) {
        const again = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
        expect([again.status, again.body]).toEqual([first.status, first.body]);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
      }
      expect(await executionsOf(contact.id)).toBe(1);
    });

    it('treats the same JSON with its keys in another order as the same request', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const first = await post(
        `/workflows/${workflowId}/trigger`,
        { contact_id: contact.id, payload: { a: 1, b: 2 } },
        key,
      );
      const again = await post(
        `/workflows/${workflowId}/trigger`,
        { payload: { b: 2, a: 1 }, contact_id: contact.id },
        key,
      );
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(await executionsOf(contact.id)).toBe(1);
    });

    it('refuses the same key with a different body with 422 and creates nothing', async () => {
      const [one, two] = [await h.createContact(), await h.createContact()];
      const key = freshKey();
      expect((await post(`/workflows/${workflowId}/trigger`, { contact_id: one.id }, key)).status).toBe(202);
      const other = await post(`/workflows/${workflowId}/trigger`, { contact_id: two.id }, key);
      expect(other.status).toBe(422);
      expect(other.body).toMatchObject({
        error: 'Idempotency-Key was already used with a different request',
        issues: [{ path: 'headers.idempotency-key', message: expect.any(String) }],
      });
      expect(await executionsOf(two.id)).toBe(0);
    });

    it('refuses the same key on another workflow (another path) with 422', async () => {
      const contact = await h.createContact();
      const otherWorkflow = (await h.createWorkflow(tagStep, 'Other')).id;
      const key = freshKey();
      expect((await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key)).status).toBe(202);
      expect((await post(`/workflows/${otherWorkflow}/trigger`, { contact_id: contact.id }, key)).status).toBe(422);
      expect(await h.db.execution.count({ where: { workflowId: otherWorkflow } })).toBe(0);
    });

    it('runs requests without a key, or with different keys, as usual', async () => {
      const contact = await h.createContact();
      const first = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, freshKey());
      clock.advance(10_000); // past the 5 s deduplication window, so re-entry "always" enrolls again
      const second = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, freshKey());
      clock.advance(10_000);
      const third = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id });
      expect([first.status, second.status, third.status]).toEqual([202, 202, 202]);
      expect(new Set([first.body.execution_id, second.body.execution_id, third.body.execution_id]).size).toBe(3);
      expect(third.headers.get('idempotent-replayed')).toBeNull();
    });

    it('replays an error answer too: the first 403 stays the answer after the contact opts in', async () => {
      const contact = await h.createContact({ opted_in: false });
      const key = freshKey();
      const first = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect(first.status).toBe(403);
      await h.api.patch(`/contacts/${contact.id}`, { opted_in: true });
      const again = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect([again.status, again.body]).toEqual([403, first.body]);
      expect(await executionsOf(contact.id)).toBe(0);
    });

    it('keeps keys apart per account: the same key in another account is another request', async () => {
      const other = await createAccount(h.db, { name: 'Other account', adminEmail: 'other@example.com' });
      const headers = { authorization: `Bearer ${other.api_key}`, 'content-type': 'application/json' };
      const contact = (await (
        await fetch(`${h.baseUrl}/api/v1/contacts`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ email: 'x@example.com', opted_in: true }),
        })
      ).json()) as { id: string };
      const workflow = (await (
        await fetch(`${h.baseUrl}/api/v1/workflows`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ name: 'W', definition: tagStep, status: 'active' }),
        })
      ).json()) as { id: string };
      const mine = await h.createContact();
      const key = freshKey();
      expect((await post(`/workflows/${workflowId}/trigger`, { contact_id: mine.id }, key)).status).toBe(202);
      const theirs = await post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id }, key, other.api_key);
      expect(theirs.status).toBe(202);
      expect(theirs.headers.get('idempotent-replayed')).toBeNull();
    });

    it('keeps its answers in Postgres: a Redis flush does not make a repeat run again', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const first = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect(first.status).toBe(202);
      // Everything of this test's queue prefix, as a FLUSHALL would (other test files share the server).
      const stale = await h.deps.redis.keys(`${h.config.QUEUE_PREFIX}*`);
      if (stale.length > 0) await h.deps.redis.del(...stale);
      expect(await h.deps.redis.keys(`${h.config.QUEUE_PREFIX}*`)).toEqual([]);
      const again = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect([again.status, again.body]).toEqual([202, first.body]);
      expect(await executionsOf(contact.id)).toBe(1);
    });

    it('expires a key after 24 hours: the same key then runs as a new request', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const first = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      clock.advance(IDEMPOTENCY_TTL_MS - 1);
      const replayed = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect(replayed.headers.get('idempotent-replayed')).toBe('true');
      clock.advance(1);
      const fresh = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect(fresh.status).toBe(202);
      expect(fresh.headers.get('idempotent-replayed')).toBeNull();
      expect(fresh.body.execution_id).not.toBe(first.body.execution_id);
      expect(await executionsOf(contact.id)).toBe(2);
    });

    it('refuses a repeat while the first request is in progress with 409 and Retry-After, until its lease ends', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const path = `/api/v1/workflows/${workflowId}/trigger`;
      const body = { contact_id: contact.id };
      // The first request's claim, as a process that is still running it (or died doing so) left it.
      const id = { accountId: h.account.account_id, route: IDEMPOTENT_ROUTES.trigger, key };
      expect(await claimIdempotencyKey(h.deps.pool, id, requestHash('POST', path, body), clock.now())).toEqual({
        kind: 'claimed',
        claimedAt: clock.now(),
      });
      const busy = await post(`/workflows/${workflowId}/trigger`, body, key);
      expect(busy.status).toBe(409);
      expect(busy.body.error).toBe('a request with this Idempotency-Key is still in progress');
      expect(busy.headers.get('retry-after')).toBe('1');
      expect(await executionsOf(contact.id)).toBe(0);
      clock.advance(IDEMPOTENCY_CLAIM_LEASE_MS);
      const taken = await post(`/workflows/${workflowId}/trigger`, body, key);
      expect(taken.status).toBe(202);
      expect(await executionsOf(contact.id)).toBe(1);
    });

    it('lets concurrent duplicates create one execution: the others get 409 or the same answer', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key)),
      );
      const fresh = answers.filter((a) => a.status === 202 && a.headers.get('idempotent-replayed') === null);
      expect(fresh).toHaveLength(1);
      for (const answer of answers) {
        if (answer.status === 409) expect(answer.body.error).toMatch(/still in progress/);
        else expect([answer.status, answer.body]).toEqual([202, fresh[0]!.body]);
      }
      expect(await executionsOf(contact.id)).toBe(1);
    });

    it('a client that hangs up before the answer can retry: the key still yields one execution', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const body = JSON.stringify({ contact_id: contact.id });
      const controller = new AbortController();
      const abandoned = fetch(`${h.baseUrl}/api/v1/workflows/${workflowId}/trigger`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${h.account.api_key}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body,
        signal: controller.signal,
      }).catch(() => null);
      controller.abort();
      await abandoned;
      // Retry until the first request's fate is known (409 while it still runs), as a client would.
      let retry = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      for (let i = 0; retry.status === 409 && i < 200; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        retry = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      }
      expect(retry.status).toBe(202);
      const again = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect([again.status, again.body]).toEqual([202, retry.body]);
      expect(await executionsOf(contact.id)).toBe(1);
    });

    it.each([
      ['longer than 255 characters', 'k'.repeat(MAX_IDEMPOTENCY_KEY_LENGTH + 1)],
      ['empty', ''],
      ['not ASCII', 'clé'],
    ])('refuses a key %s with 400 at headers.idempotency-key and creates nothing', async (_, key) => {
      const contact = await h.createContact();
      const response = await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({
        error: 'invalid Idempotency-Key header',
        issues: [{ path: 'headers.idempotency-key', message: 'must be 1 to 255 printable ASCII characters' }],
      });
      expect(await executionsOf(contact.id)).toBe(0);
    });

    it('accepts a key of exactly 255 characters', async () => {
      const contact = await h.createContact();
      const key = `${freshKey()}-`.padEnd(MAX_IDEMPOTENCY_KEY_LENGTH, 'k');
      expect((await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key)).status).toBe(202);
      expect(
        (await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key)).headers.get(
          'idempotent-replayed',
        ),
      ).toBe('true');
    });
  });

  describe('Idempotency-Key on POST /contacts/{id}/events', () => {
    it('stores the event once and answers a repeat with the first answer', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      const body = { name: 'cart_abandoned', properties: { total: 99 } };
      const first = await post(`/contacts/${contact.id}/events`, body, key);
      const again = await post(`/contacts/${contact.id}/events`, body, key);
      expect(first.status).toBe(202);
      expect([again.status, again.body]).toEqual([202, first.body]);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await h.db.contactEvent.count({ where: { contactId: contact.id } })).toBe(1);
    });

    it('keeps a separate key space from the trigger route', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      expect((await post(`/workflows/${workflowId}/trigger`, { contact_id: contact.id }, key)).status).toBe(202);
      const event = await post(`/contacts/${contact.id}/events`, { name: 'signed_up' }, key);
      expect(event.status).toBe(202);
      expect(event.headers.get('idempotent-replayed')).toBeNull();
    });

    it('refuses a different event under the same key with 422 and stores nothing more', async () => {
      const contact = await h.createContact();
      const key = freshKey();
      await post(`/contacts/${contact.id}/events`, { name: 'a' }, key);
      expect((await post(`/contacts/${contact.id}/events`, { name: 'b' }, key)).status).toBe(422);
      expect(await h.db.contactEvent.count({ where: { contactId: contact.id } })).toBe(1);
    });
  });

  describe('OpenAPI document', () => {
    it('documents the Idempotency-Key header, its 409 and 422, default_timezone and event_id', async () => {
      const { body } = await h.api.raw('GET', '/openapi.json');
      for (const path of ['/api/v1/workflows/{id}/trigger', '/api/v1/contacts/{id}/events']) {
        const operation = body.paths[path].post;
        expect(operation.parameters).toEqual(
          expect.arrayContaining([expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: false })]),
        );
        expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['409', '422']));
      }
      const settings = body.paths['/api/v1/account/settings'];
      expect(settings.get.responses['200'].content['application/json'].schema.properties).toHaveProperty(
        'default_timezone',
      );
      expect(settings.patch.requestBody.content['application/json'].schema.properties).toHaveProperty(
        'default_timezone',
      );
      const event = body.paths['/api/v1/contacts/{id}/events'].post.responses['202'];
      expect(event.content['application/json'].schema.properties).toHaveProperty('event_id');
    });
  });

  describe('idempotency keys in Postgres', () => {
    const id = (key: string) => ({ accountId: h.account.account_id, route: IDEMPOTENT_ROUTES.events, key });

    it('a released claim (an answer of 500 or more) lets the next request run', async () => {
      const key = id(freshKey());
      const claim = await claimIdempotencyKey(h.deps.pool, key, 'hash', clock.now());
      expect(claim.kind).toBe('claimed');
      if (claim.kind !== 'claimed') return;
      expect((await claimIdempotencyKey(h.deps.pool, key, 'hash', clock.now())).kind).toBe('in_progress');
      await releaseIdempotencyKey(h.deps.pool, key, claim.claimedAt);
      expect((await claimIdempotencyKey(h.deps.pool, key, 'hash', clock.now())).kind).toBe('claimed');
    });

    it('a claim taken over after its lease is not overwritten by the late first request', async () => {
      const key = id(freshKey());
      const first = await claimIdempotencyKey(h.deps.pool, key, 'hash', clock.now());
      clock.advance(IDEMPOTENCY_CLAIM_LEASE_MS);
      const second = await claimIdempotencyKey(h.deps.pool, key, 'hash', clock.now());
      if (first.kind !== 'claimed' || second.kind !== 'claimed') throw new Error('both claims should succeed');
      await storeIdempotentAnswer(h.deps.pool, key, first.claimedAt, 202, { from: 'first' });
      expect((await claimIdempotencyKey(h.deps.pool, key, 'hash', clock.now())).kind).toBe('in_progress');
      await storeIdempotentAnswer(h.deps.pool, key, second.claimedAt, 202, { from: 'second' });
      expect(await claimIdempotencyKey(h.deps.pool, key, 'hash', clock.now())).toEqual({
        kind: 'replay',
        status: 202,
        body: { from: 'second' },
      });
    });

    it('purges rows older than 24 hours, oldest first, and keeps younger ones', async () => {
      const now = clock.now();
      const old = id(freshKey());
      const young = id(freshKey());
      for (const [key, at] of [
        [old, new Date(now.getTime() - IDEMPOTENCY_TTL_MS - 1)],
        [young, new Date(now.getTime() - IDEMPOTENCY_TTL_MS + 60_000)],
      ] as const)
        await h.db.idempotencyKey.create({
          data: { ...key, requestHash: 'h', statusCode: 202, body: {}, createdAt: at },
        });
      expect(await purgeExpiredIdempotencyKeys(h.deps.pool, now)).toBeGreaterThanOrEqual(1);
      const left = await h.db.idempotencyKey.findMany({ where: { key: { in: [old.key, young.key] } } });
      expect(left.map((row) => row.key)).toEqual([young.key]);
    });
  });
});
