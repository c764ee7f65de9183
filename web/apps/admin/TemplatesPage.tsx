import { useEffect, useRef, useState } from "react";
import { api, ApiError, Channel, NotificationType, query, Schemas, when } from "./api";

type Template = Schemas["TemplateOut"];
type Preview = Schemas["TemplatePreview"];

const T = "/api/v1/notifications/templates";

const loadVersions = (id: string) => api.request<Template[]>("GET", `${T}/${id}/versions`);

export function TemplatesPage() {
  const [templates, setTemplates] = useState<Template[]>([]);
  const [filter, setFilter] = useState({ notification_type: "", channel: "", locale: "" });
  const [editing, setEditing] = useState<Template | null>(null);
  const [error, setError] = useState<string | null>(null);

  const [reloads, setReloads] = useState(0);

  // The list for the filter chosen (again when the editor closes); an answer for an older filter is dropped.
  useEffect(() => {
    let current = true;
    api.request<Template[]>("GET", T + query(filter)).then(
      (loaded) => {
        if (!current) return;
        setTemplates(loaded);
        setError(null);
      },
      (failure) => {
        if (current) setError((failure as ApiError).detail);
      },
    );
    return () => {
      current = false;
    };
  }, [filter, reloads]);

  if (editing) {
    return <TemplateEditor template={editing} onClose={() => { setEditing(null); setReloads((n) => n + 1); }} />;
  }
  return (
    <section>
      <h1>Templates</h1>
      <div className="filters">
        <label>Locale
          <select aria-label="Locale" value={filter.locale} onChange={(e) => setFilter({ ...filter, locale: e.target.value })}>
            <option value="">all</option><option value="en">en</option><option value="fr">fr</option>
          </select>
        </label>
        <label>Channel
          <select aria-label="Channel" value={filter.channel} onChange={(e) => setFilter({ ...filter, channel: e.target.value })}>
            <option value="">all</option><option>EMAIL</option><option>IN_APP</option><option>SMS</option>
          </select>
        </label>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <table>
        <thead><tr><th>Type</th><th>Channel</th><th>Locale</th><th>Version</th><th>Subject</th><th /></tr></thead>
        <tbody>
          {templates.map((t) => (
            <tr key={t.id}>
              <td>{t.notification_type}</td><td>{t.channel}</td><td>{t.locale}</td><td>v{t.version}</td>
              <td className="clip">{t.subject_template ?? "—"}</td>
              <td><button type="button" onClick={() => setEditing(t)} aria-label={`Edit ${t.name}`}>Edit</button></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function TemplateEditor({ template, onClose }: { template: Template; onClose: () => void }) {
  const [current, setCurrent] = useState(template);
  const [subject, setSubject] = useState(template.subject_template ?? "");
  const [body, setBody] = useState(template.body_template);
  const [html, setHtml] = useState(template.html_template ?? "");
  const [preview, setPreview] = useState<Preview | null>(null);
  // Two messages: the latest preview's, and the latest save's (or activation's). A preview answering later
  // does not wipe a refused save's message; editing the draft does.
  const [previewProblem, setPreviewProblem] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [versions, setVersions] = useState<Template[]>([]);

  useEffect(() => {
    let shown = true;
    loadVersions(current.id).then(
      (loaded) => {
        if (shown) setVersions(loaded);
      },
      (failure) => {
        if (shown) setProblem((failure as ApiError).detail);
      },
    );
    return () => {
      shown = false;
    };
  }, [current.id]);

  // Live preview: the draft rendered by the API's preview route, 300 ms after the last keystroke; only the
  // answer to the latest draft is shown (an older one arriving late is dropped).
  const latest = useRef(0);
  useEffect(() => {
    const timer = setTimeout(async () => {
      const asked = ++latest.current;
      try {
        // The template's type and channel are the API's own values (typed as plain strings in its answer).
        const draft: Schemas["TemplateDraft"] = {
          notification_type: current.notification_type as NotificationType, channel: current.channel as Channel,
          locale: current.locale, subject_template: subject || null, body_template: body, html_template: html || null,
        };
        const request: Schemas["TemplatePreviewRequest"] = { template: draft };
        const rendered = await api.request<Preview>("POST", `${T}/preview`, request);
        if (asked !== latest.current) return;
        setPreview(rendered);
        setPreviewProblem(null);
      } catch (failure) {
        if (asked === latest.current) setPreviewProblem((failure as ApiError).detail);
      }
    }, 300);
    return () => clearTimeout(timer);
  }, [subject, body, html, current]);

  const edit = (set: (value: string) => void) => (event: { target: { value: string } }) => {
    set(event.target.value);
    setProblem(null);
  };

  const save = async () => {
    try {
      const edit: Schemas["TemplateEdit"] = { subject_template: subject || null, body_template: body, html_template: html || null };
      const stored = await api.request<Template>("PUT", `${T}/${current.id}`, edit);
      setCurrent(stored);
      setSaved(`Saved as version ${stored.version}`);
      setProblem(null);
    } catch (failure) {
      setProblem((failure as ApiError).detail);
      setSaved(null);
    }
  };

  const rollBack = (version: Template) => {
    setSubject(version.subject_template ?? "");
    setBody(version.body_template);
    setHtml(version.html_template ?? "");
    setSaved(`Loaded version ${version.version}: press Save to make it the active version`);
  };

  // Activate: that version becomes the one the pipeline renders (one click, no new version); its text is loaded.
  const activate = async (version: Template) => {
    try {
      const active = await api.request<Template>("POST", `${T}/${version.id}/activate`);
      setCurrent(active);
      setSubject(active.subject_template ?? "");
      setBody(active.body_template);
      setHtml(active.html_template ?? "");
      setSaved(`Version ${active.version} is now the active version`);
      setProblem(null);
      setVersions(await loadVersions(active.id));
    } catch (failure) {
      setProblem((failure as ApiError).detail);
      setSaved(null);
    }
  };

  const deactivate = async (version: Template) => {
    try {
      const inactive = await api.request<Template>("POST", `${T}/${version.id}/deactivate`);
      setCurrent(inactive);
      setSaved(`Version ${inactive.version} deactivated: ${inactive.name} has no active version (recipients get the `
        + "base language's or English template; Activate a version to bring it back)");
      setProblem(null);
      setVersions(await loadVersions(inactive.id));
    } catch (failure) {
      setProblem((failure as ApiError).detail);
      setSaved(null);
    }
  };

  return (
    <section>
      <h1>{current.name} <small>v{current.version}{current.is_active ? "" : " (inactive)"}</small></h1>
      <button type="button" className="quiet" onClick={onClose}>Back to templates</button>
      <div className="editor">
        <div className="fields">
          <label htmlFor="subject">Subject</label>
          <input id="subject" value={subject} onChange={edit(setSubject)} aria-describedby="template-problem" />
          <label htmlFor="body">Text</label>
          <textarea id="body" rows={10} value={body} onChange={edit(setBody)} aria-describedby="template-problem" />
          <label htmlFor="html">HTML</label>
          <textarea id="html" rows={6} value={html} onChange={edit(setHtml)} aria-describedby="template-problem" />
          <p id="template-problem" className="error" role="alert">{problem ?? previewProblem}</p>
          <button type="button" onClick={() => void save()}>Save</button>
          <p role="status">{saved}</p>
        </div>
        <div className="preview" aria-label="Preview" role="region">
          <h2>Preview</h2>
          {preview && (
            <>
              {preview.subject !== null && <p><strong>Subject:</strong> <span data-testid="preview-subject">{preview.subject}</span></p>}
              <pre data-testid="preview-text">{preview.text}</pre>
              {preview.html && <iframe title="HTML preview" sandbox="" srcDoc={preview.html} />}
            </>
          )}
        </div>
      </div>
      <h2>Versions</h2>
      <table>
        <thead><tr><th>Version</th><th>By</th><th>When</th><th>Active</th><th>Changes from the previous</th><th /></tr></thead>
        <tbody>
          {versions.map((v, index) => (
            <tr key={v.id}>
              <td>v{v.version}</td><td>{v.created_by ?? "seed"}</td><td>{when(v.created_at)}</td><td>{v.is_active ? "yes" : ""}</td>
              <td><Diff before={versions[index + 1]} after={v} /></td>
              <td className="actions">
                {v.is_active ? (
                  <button type="button" className="quiet" aria-label={`Deactivate v${v.version}`}
                    onClick={() => void deactivate(v)}>Deactivate</button>
                ) : (
                  <>
                    <button type="button" aria-label={`Activate v${v.version}`} onClick={() => void activate(v)}>Activate</button>
                    <button type="button" className="quiet" onClick={() => rollBack(v)}>Roll back to v{v.version}</button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Lines removed and added, per field, against the previous version (no library: templates are short). */
function Diff({ before, after }: { before?: Template; after: Template }) {
  if (!before) return <span>first version</span>;
  const fields = ["subject_template", "body_template", "html_template"] as const;
  const changes = fields.flatMap((field) => {
    const old = (before[field] ?? "").split("\n");
    const now = (after[field] ?? "").split("\n");
    return [
      ...old.filter((line) => !now.includes(line)).map((line) => ({ sign: "-", line, field })),
      ...now.filter((line) => !old.includes(line)).map((line) => ({ sign: "+", line, field })),
    ];
  });
  if (!changes.length) return <span>no change</span>;
  return (
    <pre className="diff">
      {changes.slice(0, 12).map((c, i) => <div key={i} className={c.sign === "+" ? "add" : "del"}>{c.sign} {c.line}</div>)}
    </pre>
  );
}
