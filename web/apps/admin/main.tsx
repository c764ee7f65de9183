// /admin: the operators' console. English only; signs in with a pasted bearer token (sessionStorage).
import { FormEvent, StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { api, ApiError, TOKEN_KEY } from "./api";
import { AnalyticsPage } from "./AnalyticsPage";
import { ExperimentsPage } from "./ExperimentsPage";
import { PoliciesPage } from "./PoliciesPage";
import { QueuePage } from "./QueuePage";
import { SuppressionsPage } from "./SuppressionsPage";
import { TemplatesPage } from "./TemplatesPage";
import { WhyPage } from "./WhyPage";
import "./admin.css";

const PAGES = [
  { hash: "#/templates", name: "Templates" },
  { hash: "#/queue", name: "Queue" },
  { hash: "#/policies", name: "Policies" },
  { hash: "#/analytics", name: "Analytics" },
  { hash: "#/why", name: "Why (not)?" },
  { hash: "#/suppressions", name: "Suppressions" },
  { hash: "#/experiments", name: "Experiments" },
];

function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    try {
      await api.request("GET", "/api/v1/notifications/analytics");
      onSignedIn();
    } catch (failure) {
      sessionStorage.removeItem(TOKEN_KEY);
      setError((failure as ApiError).detail);
    }
  };
  return (
    <main className="signin">
      <h1>notiflow admin</h1>
      <form onSubmit={submit}>
        <label htmlFor="token">Token</label>
        <textarea id="token" rows={4} value={token} onChange={(event) => setToken(event.target.value)}
          placeholder="an admin bearer token (notiflow dev prints one)" aria-describedby="signin-error" />
        {error && <p id="signin-error" className="error" role="alert">{error}</p>}
        <button type="submit" disabled={!token.trim()}>Sign in</button>
      </form>
    </main>
  );
}

function useHash(): string {
  const [hash, setHash] = useState(window.location.hash || "#/templates");
  useEffect(() => {
    const onChange = () => setHash(window.location.hash || "#/templates");
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return hash;
}

function Console({ onSignOut }: { onSignOut: () => void }) {
  const hash = useHash();
  const route = hash.split("?")[0];
  const params = new URLSearchParams(hash.split("?")[1] ?? "");
  return (
    <>
      <header className="top">
        <strong>notiflow admin</strong>
        <nav aria-label="Console">
          {PAGES.map((page) => (
            <a key={page.hash} href={page.hash} aria-current={route === page.hash ? "page" : undefined}>{page.name}</a>
          ))}
        </nav>
        <button type="button" className="quiet" onClick={onSignOut}>Sign out</button>
      </header>
      <main className="page">
        {route === "#/templates" && <TemplatesPage />}
        {route === "#/queue" && <QueuePage />}
        {route === "#/analytics" && <AnalyticsPage />}
        {route === "#/why" && <WhyPage key={params.toString()} initial={params} />}
        {route === "#/policies" && <PoliciesPage />}
        {route === "#/suppressions" && <SuppressionsPage />}
        {route === "#/experiments" && <ExperimentsPage />}
      </main>
    </>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(sessionStorage.getItem(TOKEN_KEY)));
  if (!signedIn) return <SignIn onSignedIn={() => setSignedIn(true)} />;
  return <Console onSignOut={() => { sessionStorage.removeItem(TOKEN_KEY); setSignedIn(false); }} />;
}

createRoot(document.getElementById("root")!).render(<StrictMode><App /></StrictMode>);
