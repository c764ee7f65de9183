// /demo: the issue tracker as the demo user sees it, with the bell and the settings panel (notiflow dev only).
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { InAppNotifications, NotificationSettings, NotiflowApi, NotiflowProvider } from "../../src/index";
import "./demo.css";

const KEY = "notiflow.demo.token";

function takeToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem(KEY, fromUrl);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(KEY);
}

const ISSUES = [
  { id: "ISS-101", title: "Licence renewal form rejects valid dates", status: "OPEN", priority: "HIGH" },
  { id: "ISS-102", title: "Payment receipt e-mail missing the reference", status: "IN_PROGRESS", priority: "MEDIUM" },
  { id: "ISS-103", title: "Inspector cannot upload photos over 5 MB", status: "OPEN", priority: "LOW" },
  { id: "ISS-104", title: "Search by licence number is slow", status: "RESOLVED", priority: "MEDIUM" },
];

function Demo({ token }: { token: string }) {
  const [locale, setLocale] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    new NotiflowApi("", { token })
      .preferences()
      .then((settings) => setLocale(settings.locale))
      .catch((error) => setProblem(error.detail ?? String(error)));
  }, [token]);
  useEffect(() => {
    if (locale) document.documentElement.lang = locale.startsWith("fr") ? "fr" : "en";
  }, [locale]);
  if (problem) return <p className="demo-problem" role="alert">{problem}</p>;
  if (!locale) return null;
  const fr = locale.startsWith("fr");
  return (
    <NotiflowProvider apiUrl="" token={token} locale={locale}>
      <header className="demo-header">
        <strong className="demo-brand">{fr ? "Suivi des tickets" : "Issue tracker"}</strong>
        <nav aria-label={fr ? "Navigation" : "Main"} className="demo-nav">
          <a href="#issues">{fr ? "Tickets" : "Issues"}</a>
          <a href="#settings">{fr ? "Paramètres" : "Settings"}</a>
        </nav>
        <InAppNotifications />
      </header>
      <main className="demo-main">
        <section id="issues" aria-labelledby="issues-title">
          <h1 id="issues-title">{fr ? "Tickets" : "Issues"}</h1>
          <table className="demo-issues">
            <thead>
              <tr><th scope="col">#</th><th scope="col">{fr ? "Titre" : "Title"}</th><th scope="col">{fr ? "Statut" : "Status"}</th><th scope="col">{fr ? "Priorité" : "Priority"}</th></tr>
            </thead>
            <tbody>
              {ISSUES.map((issue) => (
                <tr key={issue.id}><td>{issue.id}</td><td>{issue.title}</td><td>{issue.status}</td><td>{issue.priority}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
        <div id="settings"><NotificationSettings /></div>
      </main>
    </NotiflowProvider>
  );
}

/** ?token= (any person's), else the demo user's from the dev-only /demo/session. */
function App() {
  const [token, setToken] = useState<string | null>(takeToken);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    if (token) return;
    fetch("/demo/session")
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then((session: { token: string }) => setToken(session.token))
      .catch((error) => setProblem(`no demo session (${error.message}): open the /demo link notiflow dev prints`));
  }, [token]);
  if (problem) return <p className="demo-problem" role="alert">{problem}</p>;
  return token ? <Demo token={token} /> : null;
}

// The push service worker (served by the API at /notiflow-sw.js, scope: the whole origin), registered at once
// so it shows pushes even before "Notifications on this device" is switched on in this tab.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/notiflow-sw.js").catch((error) => console.warn("notiflow-sw.js:", error));
}

createRoot(document.getElementById("root")!).render(<StrictMode><App /></StrictMode>);
