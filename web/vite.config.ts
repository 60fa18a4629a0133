// The web client: Svelte 5 + Vite, built into dist/web, which `flowlens serve` serves at `/`.
// `npm run build:web` builds it; `npx vite --config web/vite.config.ts` runs a dev server that
// proxies /graphql to a `flowlens serve` on FLOWLENS_API (default http://127.0.0.1:4000).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const root = fileURLToPath(new URL('.', import.meta.url));
const api = process.env.FLOWLENS_API ?? 'http://127.0.0.1:4000';

export default defineConfig({
  root,
  base: '/',
  plugins: [svelte({ configFile: false })],
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: { '/graphql': { target: api, ws: true }, '/health': api },
  },
});
