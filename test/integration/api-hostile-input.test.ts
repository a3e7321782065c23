import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Regression tests: inputs that once reached Postgres or the serialiser and answered 500.
describe('hostile input is refused with 400 and stores nothing', () => {
  let h: Harness;
  let contactId: string;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    contactId = (await h.createContact()).id;
  });
  afterAll(() => h.stop());

  it('malformed percent-encoding in a path', async () => {
    for (const path of ['/api/v1/executions/%', '/api/v1/contacts/%zz', `/api/v1/contacts/${'x'}/tags/%E0%A4%A`]) {
      const response = await h.api.raw('GET', path);
      expect(response.status, path).toBe(400);
      expect(response.body.error).toBe('malformed URL encoding');
    }
  });

  it('NUL characters and lone surrogates in strings and keys', async () => {
    const before = await h.db.contact.count();
    const bodies = [
      '{"email":"a@example.com","opted_in":true,"timezone":"Europe/\\u0000Paris"}',
      '{"email":"a@example.com","opted_in":true,"attributes":{"note":"\\ud800"}}',
      '{"email":"a@example.com","opted_in":true,"attributes":{"k\\u0000":1}}',
    ];
    for (const body of bodies) {
      const response = await h.api.raw('POST', '/api/v1/contacts', body, { 'content-type': 'application/json' });
      expect(response.status, body).toBe(400);
      expect(response.body.issues[0].path).toMatch(/^body/);
    }
    expect((await h.api.raw('DELETE', `/api/v1/contacts/${contactId}/tags/%00`)).status).toBe(400);
    expect(await h.db.contact.count()).toBe(before);
  });

  it('JSON nested deeper than 64 levels', async () => {
    const deep = `{"email":"a@example.com","opted_in":true,"attributes":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
    const response = await h.api.raw('POST', '/api/v1/contacts', deep, { 'content-type': 'application/json' });
    expect(response.status).toBe(400);
    expect(response.body.issues[0].message).toContain('nested more than 64 levels');
  });

  it('body errors come after authentication', async () => {
    const response = await h.api.raw(
      'POST',
      '/api/v1/contacts',
      '{not json',
      { 'content-type': 'application/json' },
      'fm_unknown_key_0000000000000000000000',
    );
    expect(response.status).toBe(401);
  });
});
