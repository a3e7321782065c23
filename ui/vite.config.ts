import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Build of the designer's view: `ui/src` → `ui/dist`, served by the engine at `/ui` (src/api/ui.ts).
 * Preact through the automatic JSX runtime; no plugin, no CDN: every file lands in `dist/assets`.
 * `scripts/ui-build.ts --check` builds again into a temporary folder and compares, so the committed
 * `dist` always matches these sources.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The browser test drives Debian's Chromium; no older browsers to support.
    target: 'es2022',
    // The layout engine alone is about 1.5 MB; the page loads once per session.
    chunkSizeWarningLimit: 2500,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
