import { defineConfig } from 'vite';

// Preact's automatic JSX runtime through esbuild: no Babel plugin needed.
export default defineConfig({
  esbuild: {
    minify: process.env.NOMINIFY ? false : "esbuild", jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    minify: process.env.NOMINIFY ? false : "esbuild",
    target: 'es2020',
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` against a running server: GPUFLEET_URL=http://127.0.0.1:8470
    proxy: {
      '/api': { target: process.env.GPUFLEET_URL || 'http://127.0.0.1:8470', ws: true },
    },
  },
});
