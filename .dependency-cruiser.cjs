/**
 * Import rules of src/ (run by `npm run lint`): the pure core imports nothing that does I/O, the API
 * sits on top, and no module takes part in an import cycle.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules import one way only; a cycle means an interface belongs in the lower module.',
      from: { path: '^src/', pathNot: '^src/generated/' },
      to: { circular: true },
    },
    {
      name: 'pure-core',
      severity: 'error',
      comment:
        'definition/ and compiler/ are pure: only each other, the vocabulary, zod, xstate, ipaddr.js (address arithmetic), luxon (IANA zone arithmetic) and node:crypto (hashing, for sticky splits).',
      from: { path: '^src/(definition|compiler)/' },
      to: {
        pathNot: [
          '^src/(definition|compiler)/',
          '^src/vocabulary.ts$',
          'node_modules/(zod|xstate|ipaddr.js|luxon)/',
          '^node:crypto$',
          '^crypto$',
        ],
      },
    },
    {
      name: 'api-on-top',
      severity: 'error',
      comment: 'Nothing below the API imports it; only the entry points import the runtime.',
      from: { path: '^src/', pathNot: ['^src/api/', '^src/runtime\\.ts$', '^src/cli\\.ts$'] },
      to: { path: '^src/api/' },
    },
    {
      name: 'engine-on-interfaces',
      severity: 'error',
      comment:
        'The engine uses the queue through WorkQueue (engine/work.ts): the queue calls the engine, not the other way.',
      from: { path: '^src/engine/' },
      to: { path: '^src/(queue|api)/' },
    },
    {
      name: 'engine-through-the-store',
      severity: 'error',
      comment:
        'The engine reaches Postgres only through ExecutionStore (store/execution-store.ts), and actions only through ActionRunner (actions/action.ts); the runtime wires the implementations. The consistency check (an operator tool reading every table in one read-only transaction) is the exception.',
      from: { path: '^src/engine/', pathNot: '^src/engine/consistency\\.ts$' },
      to: { path: ['^src/(db|sql)/', '^src/store/postgres-store\\.ts$', '^src/actions/(?!action\\.ts$)'] },
    },
    {
      name: 'sql-behind-the-store',
      severity: 'error',
      comment: 'Statements (src/sql/) are run by the store, the API and the runtime; nothing else writes SQL.',
      from: { path: '^src/', pathNot: ['^src/(sql|store|api)/', '^src/runtime\\.ts$'] },
      to: { path: '^src/sql/' },
    },
    {
      name: 'effects-below-engine',
      severity: 'error',
      comment: 'Actions, providers, the database layer and observability are below the engine: they never import it.',
      from: { path: '^src/(actions|providers|db|sql|store|observability|definition|compiler)/' },
      to: { path: '^src/(engine|queue)/' },
    },
    {
      name: 'runtime-is-wiring',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli\\.ts$' },
      to: { path: '^src/runtime\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
