// The admin console (/admin) and the tracker demo page (/demo), built into the Python package:
// programs/api/static/{admin,demo}/index.html and /static/assets/*, served by `notiflow api`; and the push
// service worker, copied as is to static/assets/notiflow-sw.js, which the API serves at /notiflow-sw.js.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

/** Emits src/notiflow-sw.js unchanged (no hash: its URL is its identity for the browser) as `fileName`. */
export function serviceWorker(fileName: string): Plugin {
  return {
    name: "notiflow-service-worker",
    generateBundle() {
      this.emitFile({ type: "asset", fileName, source: readFileSync(resolve(__dirname, "src/notiflow-sw.js"), "utf8") });
    },
  };
}

export default defineConfig({
  root: resolve(__dirname, "apps"),
  base: "/static/",
  esbuild: { jsx: "automatic" },
  plugins: [serviceWorker("assets/notiflow-sw.js")],
  build: {
    outDir: resolve(__dirname, "../programs/api/static"),
    emptyOutDir: true,
    rollupOptions: {
      input: { admin: resolve(__dirname, "apps/admin/index.html"), demo: resolve(__dirname, "apps/demo/index.html") },
    },
  },
});
