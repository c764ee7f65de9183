import { defineConfig } from "vitest/config";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["src/test/setup.ts"],
    include: ["src/**/*.test.tsx", "apps/**/*.test.tsx"],
    pool: "threads",
    poolOptions: { threads: { maxThreads: 1, minThreads: 1 } },
  },
});
