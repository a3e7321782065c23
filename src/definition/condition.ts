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

/** Reads `field` from a contact: a contact field (`email`, `opted_in`, …) or an attribute (`plan`, `attributes.plan`). */
export function readField(contact: ContactFacts, field: string): unknown {
  // Own properties only: a field named `constructor` or `__proto__` must not reach the prototype.
  const reader = Object.hasOwn(CONTACT_FIELDS, field) ? CONTACT_FIELDS[field] : undefined;
  if (reader) return reader(contact);
  const path = field.startsWith('attributes.') ? field.slice('attributes.'.length) : field;
  return lookupPath(contact.attributes, path);
}

const asNumber = (value: unknown) =>
  typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;

/** Evaluates a condition against a contact. Pure; a comparison with a missing or mistyped value is false. */
export function evaluateCondition(condition: Condition, contact: ContactFacts): boolean {
  if ('has_tag' in condition) return contact.tags.includes(condition.has_tag);
  const actual = readField(contact, condition.field);
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
