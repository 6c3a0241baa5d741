/**
 * The console's build: `npm run web:build` writes web/dist (served by the API at `/`).
 *
 * `vite` / `vite preview` with this file serve the console on their own port and pass /api
 * (the stats WebSocket included) to the API at BERTH_CONSOLE_API (default http://127.0.0.1:8080),
 * so that the console and the API share an origin as they do when the API serves it.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type ProxyOptions } from 'vite';
import react from '@vitejs/plugin-react';

const api = process.env.BERTH_CONSOLE_API ?? 'http://127.0.0.1:8080';
const proxy: Record<string, ProxyOptions> = {
  // The API checks a cookie-authenticated mutation's Origin against its own: say it is the API's.
  '/api': { target: api, ws: true, changeOrigin: true, headers: { origin: api } },
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Sizes of every file and its gzipped size are printed (the first load must stay under 200 KB gzipped JS).
    reportCompressedSize: true,
    sourcemap: false,
  },
  server: { host: '127.0.0.1', proxy },
  preview: { host: '127.0.0.1', proxy },
});
