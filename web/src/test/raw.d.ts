// Vite's `?raw` imports (a file's text), as the service worker's test loads notiflow-sw.js.
declare module "*?raw" {
  const source: string;
  export default source;
}
