// The package the tracker installs: ES module + CSS, React left to the host (peer dependency); and the push
// service worker (dist/lib/notiflow-sw.js, `@notiflow/react/notiflow-sw.js`), which the tracker serves itself
// from its own origin when its pages are not notiflow's.
import { defineConfig } from "vite";
import { serviceWorker } from "./vite.apps.config";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  plugins: [serviceWorker("notiflow-sw.js")],
  build: {
    outDir: "dist/lib",
    emptyOutDir: true,
    lib: { entry: "src/index.ts", formats: ["es"], fileName: "notiflow-react", cssFileName: "notiflow-react" },
    rollupOptions: { external: ["react", "react-dom", "react/jsx-runtime"] },
  },
});
