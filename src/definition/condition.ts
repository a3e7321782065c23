import { lookupPath } from './lookup-path.ts';
import type { Condition } from './schema.ts';

/** What a condition can see of a contact. */
export interface ContactFacts {
  email: string;
  phone: string | null;
  optedIn: boolean;
  timezone: string | null;
  tags: readonly string[];
  attributes: Record<string, unknown>;
}

const CONTACT_FIELDS: Record<string, (c: ContactFacts) => unknown> = {
  email: (c) => c.email,
  phone: (c) => c.phone,
  opted_in: (c) => c.optedIn,
  timezone: (c) => c.timezone,
  tags: (c) => c.tags,
};

/** Prefix of fields that read the payload (an event's properties) instead of the contact. */
export const PAYLOAD_PREFIX = 'payload.';

/**
 * Reads `field`: a contact field (`email`, `opted_in`, …), an attribute (`plan`, `attributes.plan`), or
 * with `payload.` a dotted path into `payload` (undefined when there is no payload). An attribute named
 * `payload` stays readable as `attributes.payload`.
 */
export function readField(contact: ContactFacts, field: string, payload?: Record<string, unknown>): unknown {
  if (field.startsWith(PAYLOAD_PREFIX)) return lookupPath(payload, field.slice(PAYLOAD_PREFIX.length));
  // Own properties only: a field named `constructor` or `__proto__` must not reach the prototype.
  const reader = Object.hasOwn(CONTACT_FIELDS, field) ? CONTACT_FIELDS[field] : undefined;
  if (reader) return reader(contact);
  const path = field.startsWith('attributes.') ? field.slice('attributes.'.length) : field;
  return lookupPath(contact.attributes, path);
}

const asNumber = (value: unknown) =>
  typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;

/**
 * Evaluates a condition against a contact and, for `payload.*` fields, an optional payload (an event's
 * properties). Pure; a comparison with a missing or mistyped value is false (`not_equals`: true). The
 * recursion is bounded: the schema refuses conditions nested deeper than `MAX_CONDITION_DEPTH`.
 */
export function evaluateCondition(
  condition: Condition,
  contact: ContactFacts,
  payload?: Record<string, unknown>,
): boolean {
  if ('all' in condition) return condition.all.every((inner) => evaluateCondition(inner, contact, payload));
  if ('any' in condition) return condition.any.some((inner) => evaluateCondition(inner, contact, payload));
  if ('not' in condition) return !evaluateCondition(condition.not, contact, payload);
  if ('has_tag' in condition) return contact.tags.includes(condition.has_tag);
  const actual = readField(contact, condition.field, payload);
  switch (condition.operator) {
    case 'exists':
      return actual !== undefined && actual !== null && actual !== '';
    case 'equals':
      return actual !== undefined && String(actual) === String(condition.value);
    case 'not_equals':
      return actual === undefined || String(actual) !== String(condition.value);
    case 'greater_than':
      return asNumber(actual) > asNumber(condition.value);
    case 'less_than':
      return asNumber(actual) < asNumber(condition.value);
    case 'contains':
      if (Array.isArray(actual)) return actual.map(String).includes(String(condition.value));
      return typeof actual === 'string' && actual.toLowerCase().includes(String(condition.value).toLowerCase());
  }
}
