import { ChangeEvent, useId, useMemo, useState } from "react";
import { ApiError, Frequency, NotificationSettingsData, PreferenceState, PreferencesUpdate, PreferenceUpdate } from "./api";
import { useNotiflow } from "./context";
import { NOTIFICATION_TYPES, typeLabel } from "./i18n";
import { usePreferences } from "./preferences";
import { usePushSubscription } from "./push";

export interface NotificationSettingsProps {
  /** Shown for the tracker's own use; the API always edits the signed-in person's settings. */
  userId?: string;
  className?: string;
  /** The push service worker's URL on the page's origin (default `/notiflow-sw.js`, as `notiflow api` serves it). */
  serviceWorkerUrl?: string;
}

/** PUSH is a column only when the API offers it (a push provider, and a subscription of this person's). */
const CHANNELS = ["EMAIL", "IN_APP", "SMS", "PUSH"] as const;
type PersonChannel = PreferenceUpdate["channel"];
const isPersonChannel = (channel: string): channel is PersonChannel => (CHANNELS as readonly string[]).includes(channel);
const FREQUENCIES: Frequency[] = ["IMMEDIATE", "HOURLY", "DAILY"];
const HOURS = Array.from({ length: 24 }, (_, hour) => hour);

function timeZones(current: string): string[] {
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return known.includes(current) ? known : [current, ...known];
}

/** The type × channel grid, frequency and digest hour, quiet hours with time zone, and language. */
export function NotificationSettings({ userId, className, serviceWorkerUrl }: NotificationSettingsProps) {
  const { t, locale } = useNotiflow();
  const { settings, loading, error, save, reload } = usePreferences();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [status, setStatus] = useState<string>("");
  const headingId = useId();

  const rows = useMemo(() => {
    if (!settings) return [];
    // The types the settings have, in the order of the labels (any type without a label last).
    const order = (type: string) => (NOTIFICATION_TYPES.includes(type) ? NOTIFICATION_TYPES.indexOf(type) : NOTIFICATION_TYPES.length);
    const types = [...new Set(settings.preferences.map((p) => p.notification_type))].sort((a, b) => order(a) - order(b));
    return types.map((type) => {
      const cells = new Map(settings.preferences.filter((p) => p.notification_type === type).map((p) => [p.channel, p]));
      const first = cells.get("EMAIL") ?? cells.get("IN_APP") ?? [...cells.values()][0];
      return { type, cells, first, critical: [...cells.values()].some((p) => p.critical) };
    });
  }, [settings]);
  const channels = useMemo(
    () => CHANNELS.filter((channel) => channel !== "PUSH" || Boolean(settings?.preferences.some((p) => p.channel === "PUSH"))),
    [settings],
  );

  /** Save one change; a refusal is shown next to `key` (a row or a field) and the control goes back. */
  const submit = async (key: string, update: PreferencesUpdate) => {
    setStatus(t.saving);
    try {
      await save(update);
      setErrors(({ [key]: _gone, ...rest }) => rest);
      setStatus(t.saved);
    } catch (failure) {
      const apiError = failure as ApiError;
      const field = key.startsWith("type:") ? undefined : key;
      const message = (field && apiError.forField?.(field)) || apiError.errors?.[0]?.message || apiError.detail || String(failure);
      setErrors((was) => ({ ...was, [key]: message }));
      setStatus("");
    }
  };

  const cellFor = (row: (typeof rows)[number], channel: PersonChannel): PreferenceState => {
    const existing = row.cells.get(channel);
    if (existing) return existing;
    // A channel never chosen (SMS): off, with the row's frequency.
    return { notification_type: row.type, channel, enabled: false, frequency: row.first?.frequency ?? "IMMEDIATE",
      digest_hour: row.first?.digest_hour ?? null, critical: row.critical, customized: false };
  };

  const toggle = (row: (typeof rows)[number], channel: PersonChannel) => (event: ChangeEvent<HTMLInputElement>) => {
    const cell = cellFor(row, channel);
    void submit(`type:${row.type}`, { preferences: [{ notification_type: row.type, channel, enabled: event.target.checked,
      frequency: cell.frequency, digest_hour: cell.frequency === "DAILY" ? cell.digest_hour : null }] });
  };

  const setFrequency = (row: (typeof rows)[number], frequency: Frequency, digestHour: number | null) => {
    const preferences = [...row.cells.values()].flatMap(({ channel, enabled }) => !isPersonChannel(channel) ? [] : [{
      notification_type: row.type, channel, enabled, frequency,
      digest_hour: frequency === "DAILY" ? digestHour ?? 8 : null,
    }]);
    void submit(`type:${row.type}`, { preferences });
  };

  if (loading && !settings) return <p className="nf-note">{t.loading}</p>;
  if (!settings) return <p className="nf-error" role="alert">{error}</p>;

  return (
    <section className={`nf-settings ${className ?? ""}`} aria-labelledby={headingId} data-user-id={userId ?? settings.user_id}>
      <h2 id={headingId} className="nf-settings-title">{t.settingsTitle}</h2>
      <table className="nf-grid">
        <thead>
          <tr>
            <th scope="col">{t.type}</th>
            {channels.map((channel) => <th scope="col" key={channel}>{t.channels[channel]}</th>)}
            <th scope="col">{t.frequency}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => {
            const label = typeLabel(locale, row.type);
            const rowError = errors[`type:${row.type}`];
            const reasonId = `nf-reason-${row.type}`;
            const reason = row.critical ? (locale === "en" && row.first?.locked_reason) || t.criticalReason : null;
            const frequency = row.first?.frequency ?? "IMMEDIATE";
            return (
              <tr key={row.type} className={row.critical ? "nf-locked" : undefined}>
                <th scope="row">
                  {label}
                  {reason && <p id={reasonId} className="nf-reason">{t.locked}: {reason}</p>}
                  {rowError && <p className="nf-error" role="alert">{rowError}</p>}
                </th>
                {channels.map((channel) => {
                  const cell = cellFor(row, channel);
                  return (
                    <td key={channel}>
                      <input type="checkbox" className="nf-switch" aria-label={`${label} — ${t.channels[channel]}`}
                        checked={cell.enabled || (row.critical && row.cells.has(channel))} disabled={row.critical}
                        aria-describedby={reason ? reasonId : undefined} onChange={toggle(row, channel)} />
                    </td>
                  );
                })}
                <td className="nf-frequency">
                  <select aria-label={t.frequencyOf(label)} value={frequency} disabled={row.critical}
                    onChange={(event) => setFrequency(row, event.target.value as Frequency, row.first?.digest_hour ?? null)}>
                    {FREQUENCIES.map((f) => <option key={f} value={f}>{t.frequencies[f]}</option>)}
                  </select>
                  {frequency === "DAILY" && (
                    <select aria-label={t.digestHourOf(label)} value={row.first?.digest_hour ?? 8}
                      onChange={(event) => setFrequency(row, "DAILY", Number(event.target.value))}>
                      {HOURS.map((hour) => <option key={hour} value={hour}>{String(hour).padStart(2, "0")}:00</option>)}
                    </select>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <DevicePush serviceWorkerUrl={serviceWorkerUrl} onChange={reload} />
      <PersonalFields settings={settings} errors={errors} submit={submit} />
      <p className="nf-status" role="status" aria-live="polite">{status}</p>
    </section>
  );
}

/** "Notifications on this device": Web Push for this browser; the grid is read again after a change (PUSH
 * is offered once this person has a subscription). */
function DevicePush({ serviceWorkerUrl, onChange }: { serviceWorkerUrl?: string; onChange: () => Promise<void> }) {
  const { t } = useNotiflow();
  const id = useId();
  const push = usePushSubscription({ serviceWorkerUrl });
  const note = push.state === "unsupported" ? t.pushUnsupported : push.state === "denied" ? t.pushDenied : null;
  const toggle = async (on: boolean) => {
    await (on ? push.subscribe() : push.unsubscribe());
    await onChange();
  };
  return (
    <div className="nf-device" data-push-state={push.state}>
      <label className="nf-inline">
        <input type="checkbox" role="switch" className="nf-switch" checked={push.state === "on"}
          disabled={push.busy || push.state === "unsupported" || push.state === "denied"}
          aria-describedby={note || push.error ? `${id}-push` : undefined}
          onChange={(event) => void toggle(event.target.checked)} />
        {t.pushDevice}
      </label>
      {note && <span id={`${id}-push`} className="nf-note">{note}</span>}
      {!note && push.error && <span id={`${id}-push`} className="nf-error" role="alert">{push.error}</span>}
    </div>
  );
}

interface PersonalFieldsProps {
  settings: NotificationSettingsData;
  errors: Record<string, string>;
  submit: (key: string, update: PreferencesUpdate) => Promise<void>;
}

function FieldError({ id, message }: { id: string; message?: string }) {
  return message ? <span id={id} className="nf-error" role="alert">{message}</span> : null;
}

function PersonalFields({ settings, errors, submit }: PersonalFieldsProps) {
  const { t } = useNotiflow();
  const id = useId();
  const [timezone, setTimezone] = useState(settings.timezone);
  const [start, setStart] = useState(settings.quiet_hours?.start ?? "22:00");
  const [end, setEnd] = useState(settings.quiet_hours?.end ?? "07:00");
  const quiet = settings.quiet_hours !== null;
  const zones = useMemo(() => timeZones(settings.timezone), [settings.timezone]);

  const saveQuiet = (enabled: boolean, from: string, until: string) =>
    submit("quiet_hours", { quiet_hours: enabled ? { start: from, end: until } : null });

  return (
    <div className="nf-fields">
      <fieldset className="nf-fieldset">
        <legend>{t.quietHours}</legend>
        <label className="nf-inline">
          <input type="checkbox" checked={quiet} onChange={(event) => void saveQuiet(event.target.checked, start, end)} />
          {t.quietEnabled}
        </label>
        <label className="nf-field">
          {t.quietStart}
          <input type="time" value={start} disabled={!quiet} aria-describedby={`${id}-quiet`}
            onChange={(event) => setStart(event.target.value)} onBlur={() => void saveQuiet(true, start, end)} />
        </label>
        <label className="nf-field">
          {t.quietEnd}
          <input type="time" value={end} disabled={!quiet} aria-describedby={`${id}-quiet`}
            onChange={(event) => setEnd(event.target.value)} onBlur={() => void saveQuiet(true, start, end)} />
        </label>
        <FieldError id={`${id}-quiet`} message={errors.quiet_hours} />
      </fieldset>
      <label className="nf-field">
        {t.timezone}
        <input list={`${id}-zones`} value={timezone} aria-invalid={Boolean(errors.timezone)}
          aria-describedby={`${id}-timezone`} onChange={(event) => setTimezone(event.target.value)}
          onBlur={() => timezone !== settings.timezone && void submit("timezone", { timezone })} />
        <datalist id={`${id}-zones`}>{zones.map((zone) => <option key={zone} value={zone} />)}</datalist>
        <FieldError id={`${id}-timezone`} message={errors.timezone} />
      </label>
      <label className="nf-field">
        {t.language}
        <select value={settings.locale} aria-describedby={`${id}-locale`}
          onChange={(event) => void submit("locale", { locale: event.target.value })}>
          {Object.entries(t.languages).map(([code, name]) => <option key={code} value={code}>{name}</option>)}
        </select>
        <FieldError id={`${id}-locale`} message={errors.locale} />
      </label>
    </div>
  );
}
