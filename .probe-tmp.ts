import { startHarness } from '/work/main/test/helpers/harness.ts';
const h = await startHarness({ worker: false });
try {
  const show = async (label: string, p: Promise<any>) => { const r = await p; console.log(label, r.status, JSON.stringify(r.body).slice(0, 400)); };
  await show('unknown field', h.api.post('/contacts', { email: 'a@b.co', opted_in: true, foo: 1, bar: 2 }));
  await show('bad fields', h.api.post('/contacts', { email: 'bad', opted_in: 'yes' }));
  await show('missing', h.api.post('/contacts', {}));
  await show('array', h.api.post('/contacts', []));
  await show('null', h.api.raw('POST', '/api/v1/contacts', 'null'));
  await show('string json', h.api.raw('POST', '/api/v1/contacts', '"x"'));
  await show('bad def', h.api.post('/workflows', { name: 'x', definition: { steps: [{ id: '1', type: 'nope' }] } }));
  await show('empty def', h.api.post('/workflows', { name: 'x', definition: { steps: [] } }));
  await show('proto', h.api.raw('POST', '/api/v1/contacts', '{"email":"a@b.co","opted_in":true,"__proto__":{"x":1}}'));
  await show('constructor', h.api.raw('POST', '/api/v1/contacts', '{"email":"a@b.co","opted_in":true,"constructor":{"prototype":{"x":1}}}'));
  await show('attrs proto', h.api.raw('POST', '/api/v1/contacts', '{"email":"a@b.co","opted_in":true,"attributes":{"__proto__":{"x":1}}}'));
  const wf = await h.createWorkflow({ steps: [{ id: 'a', type: 'add_tag', config: { tag: 't' } }] });
  for (const q of ['limit=0', 'limit=abc', 'page=-1', 'status=BOGUS', 'from=2026-13-45', 'from=yesterday', 'foo=1', 'limit=1&limit=2', 'page=1e3', 'page=NaN', 'limit=', 'page=0x10', 'from=2026-01-01T00:00:00', 'limit=%00', 'page[a]=1', 'page=99999999999999999999'])
    await show(q, h.api.get(`/workflows/${wf.id}/executions?${q}`));
  await show('tag ws', h.api.delete(`/contacts/${(await h.createContact()).id}/tags/%20`));
  await show('tag bad enc', h.api.delete(`/contacts/${(await h.createContact()).id}/tags/%E0%A4%A`));
  await show('id bad enc', h.api.get(`/contacts/%E0%A4%A`));
  await show('deep', h.api.raw('POST', '/api/v1/contacts', '{"attributes":' + '['.repeat(5000) + ']'.repeat(5000) + '}'));
  await show('unknown route', h.api.get('/nope'));
  await show('unknown method', h.api.delete(`/workflows/${wf.id}`));
  await show('settings', h.api.get('/account/settings'));
  await show('health', h.api.raw('GET', '/health'));
  await show('big', h.api.raw('POST', '/api/v1/contacts', JSON.stringify({ email: 'x'.repeat(110_000) })));
  await show('415', h.api.raw('POST', '/api/v1/contacts', 'hello', { 'content-type': 'text/plain' }));
  await show('415 noauth', h.api.raw('POST', '/api/v1/contacts', 'hello', { 'content-type': 'text/plain' }, 'bad'));
  await show('trigger bad', h.api.post(`/workflows/${wf.id}/trigger`, { contact_id: 'x', payload: [] }));
  await show('api key proto', h.api.raw('POST', '/api/v1/api-keys', '{"__proto__":{"name":"x"}}'));
  await show('settings proto', h.api.raw('PATCH', '/api/v1/account/settings', '{"__proto__":{"max_retry_attempts":"x"}}'));
} finally { await h.stop(); }
