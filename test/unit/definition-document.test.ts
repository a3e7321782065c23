import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../src/api/openapi.ts';

// The workflow definition as /docs shows it: generated from the zod schema, with the journeys' fields
// (issue #18, Build 8) described, and every reference resolving inside the document.

type Schema = Record<string, unknown> & {
  properties?: Record<string, Schema>;
  oneOf?: Schema[];
  description?: string;
  required?: string[];
};

const document = buildOpenApiDocument() as unknown as {
  components: { schemas: Record<string, Schema> };
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>>;
};
const schemas = document.components.schemas;
const stepOfType = (type: string): Schema => {
  const step = schemas.Step!.oneOf!.find((candidate) => candidate.properties?.type?.const === type);
  if (!step) throw new Error(`no step of type ${type}`);
  return step;
};

/** Every `$ref` value anywhere under `node`. */
const refsOf = (node: unknown): string[] =>
  !node || typeof node !== 'object'
    ? []
    : Object.entries(node).flatMap(([key, value]) =>
        key === '$ref' && typeof value === 'string' ? [value] : refsOf(value),
      );

describe('the definition in the OpenAPI document', () => {
  it('is the schema of the definition in the bodies that carry one, and every reference resolves', () => {
    for (const [path, method] of [
      ['/api/v1/workflows', 'post'],
      ['/api/v1/workflows/{id}/definition', 'put'],
    ] as const) {
      const body = document.paths[path]![method]!.requestBody!.content['application/json']!.schema;
      expect(body.properties!.definition).toEqual({ $ref: '#/components/schemas/Definition' });
    }
    const refs = refsOf(document);
    expect(refs).toContain('#/components/schemas/Condition');
    for (const ref of new Set(refs)) {
      expect(ref).toMatch(/^#\/components\/schemas\/\w+$/);
      expect(schemas[ref.split('/').pop()!], ref).toBeTypeOf('object');
    }
  });

  it('documents the entry triggers: event with where, and tag_added', () => {
    const triggers = schemas.Definition!.properties!.trigger!.oneOf!;
    const byType = Object.fromEntries(triggers.map((trigger) => [trigger.properties!.type!.const, trigger]));
    expect(Object.keys(byType).sort()).toEqual(['event', 'manual', 'tag_added']);
    expect(byType.event!.properties!.where).toEqual({ $ref: '#/components/schemas/Condition' });
    expect(byType.event!.required).toEqual(['type', 'event']);
    expect(byType.event!.description).toMatch(/POST \/contacts\/\{id\}\/events/);
    expect(byType.tag_added!.required).toEqual(['type', 'tag']);
  });

  it('documents send_window and exit at the workflow level', () => {
    const { send_window: window, exit } = schemas.Definition!.properties!;
    expect(Object.keys(window!.properties!)).toEqual(['start', 'end', 'days', 'timezone']);
    expect(window!.description).toMatch(/send_deferred/);
    expect(window!.properties!.timezone!.description).toMatch(/IANA/);
    expect(exit!.required).toEqual(['event']);
    expect(exit!.description).toMatch(/exit_event/);
  });

  it('documents wait_until, wait_for_event with its branches, and transactional on message steps', () => {
    const until = stepOfType('wait_until');
    expect(Object.keys(until.properties!.config!.properties!)).toEqual(['time', 'days', 'timezone']);
    expect(until.description).toMatch(/PAUSED/);
    const forEvent = stepOfType('wait_for_event');
    expect(forEvent.properties!.config!.properties!.where).toEqual({ $ref: '#/components/schemas/Condition' });
    expect(forEvent.properties!.config!.properties!.timeout!.description).toMatch(/duration/);
    expect(Object.keys(forEvent.properties!.branches!.properties!)).toEqual(['received', 'timeout']);
    expect(forEvent.description).toMatch(/event_received/);
    expect(forEvent.description).toMatch(/wait_timed_out/);
    for (const type of ['send_email', 'send_sms', 'webhook'])
      expect(stepOfType(type).properties!.config!.properties!.transactional).toMatchObject({
        type: 'boolean',
        description: expect.stringMatching(/send_window/),
      });
  });

  it('documents the condition, recursively', () => {
    const condition = schemas.Condition!;
    expect(condition.description).toMatch(/payload\.<key>/);
    expect(refsOf(condition)).toContain('#/components/schemas/Condition');
  });
});
