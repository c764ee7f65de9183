// The admin console (/admin) and the tracker demo page (/demo), built into the Python package:
// programs/api/static/{admin,demo}/index.html and /static/assets/*, served by `notiflow api`.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  root: resolve(__dirname, "apps"),
  base: "/static/",
  esbuild: { jsx: "automatic" },
  build: {
    outDir: resolve(__dirname, "../programs/api/static"),
    emptyOutDir: true,
    rollupOptions: {
      input: { admin: resolve(__dirname, "apps/admin/index.html"), demo: resolve(__dirname, "apps/demo/index.html") },
    },
  },
});
