import { lookupPath } from './condition.ts';

/** Values a template may refer to: contact fields, attributes, and the trigger payload. */
export type TemplateScope = Record<string, unknown>;

/**
 * Renders `{{name}}` and `{{payload.key}}` placeholders. Unknown names render as an empty string;
 * nothing is evaluated, so a template can never run code.
 */
export function renderTemplate(template: string, scope: TemplateScope): string {
  return template.replace(/\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g, (_, name: string) => {
    const value = lookupPath(scope, name);
    return value === undefined || value === null ? '' : String(value);
  });
}
