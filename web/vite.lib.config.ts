// The package the tracker installs: ES module + CSS, React left to the host (peer dependency).
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  build: {
    outDir: "dist/lib",
    emptyOutDir: true,
    lib: { entry: "src/index.ts", formats: ["es"], fileName: "notiflow-react", cssFileName: "notiflow-react" },
    rollupOptions: { external: ["react", "react-dom", "react/jsx-runtime"] },
  },
});
