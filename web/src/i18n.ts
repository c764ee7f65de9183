// en and fr strings. The bell's, the items' and the switches' accessible names are part of the contract.

export type Locale = "en" | "fr";

const TYPES: Record<Locale, Record<string, string>> = {
  en: {
    ISSUE_CREATED: "Issue created",
    ISSUE_ASSIGNED: "Issue assigned",
    ISSUE_STATUS_CHANGED: "Status changed",
    ISSUE_RESOLVED: "Issue resolved",
    ISSUE_COMMENT_ADDED: "New comment",
    ISSUE_REOPENED: "Issue reopened",
    HIGH_PRIORITY_ISSUE: "High-priority issue",
    AUTO_ISSUE_DETECTED: "Automatically detected issue",
    ISSUE_OVERDUE: "Issue overdue",
    DAILY_ISSUE_SUMMARY: "Daily summary",
    WEEKLY_ISSUE_REPORT: "Weekly report",
    SYSTEM_ERROR_SPIKE: "System error spike",
  },
  fr: {
    ISSUE_CREATED: "Ticket créé",
    ISSUE_ASSIGNED: "Ticket assigné",
    ISSUE_STATUS_CHANGED: "Statut modifié",
    ISSUE_RESOLVED: "Ticket résolu",
    ISSUE_COMMENT_ADDED: "Nouveau commentaire",
    ISSUE_REOPENED: "Ticket rouvert",
    HIGH_PRIORITY_ISSUE: "Ticket prioritaire",
    AUTO_ISSUE_DETECTED: "Incident détecté automatiquement",
    ISSUE_OVERDUE: "Ticket en retard",
    DAILY_ISSUE_SUMMARY: "Résumé quotidien",
    WEEKLY_ISSUE_REPORT: "Rapport hebdomadaire",
    SYSTEM_ERROR_SPIKE: "Pic d'erreurs système",
  },
};

const STRINGS = {
  en: {
    bell: (n: number) => `Notifications, ${n} unread`,
    panelTitle: "Notifications",
    markRead: "Mark as read",
    markAllRead: "Mark all as read",
    archive: "Archive",
    viewIssue: "View issue",
    unread: "Unread",
    empty: "No notifications",
    loading: "Loading…",
    loadMore: "Load more",
    live: "Live",
    polling: "Updates every few seconds (live stream unavailable)",
    channels: { EMAIL: "Email", IN_APP: "In-app", SMS: "SMS", PUSH: "Push" } as Record<string, string>,
    pushDevice: "Notifications on this device",
    pushUnsupported: "This browser cannot receive push notifications.",
    pushDenied: "Notifications are blocked for this site: allow them in the browser's settings.",
    settingsTitle: "Notification settings",
    type: "Notification",
    frequency: "Frequency",
    frequencies: { IMMEDIATE: "Immediately", HOURLY: "Hourly digest", DAILY: "Daily digest" } as Record<string, string>,
    digestHour: "Digest hour",
    locked: "Always sent",
    criticalReason: "Critical: it reports production being down, so it is always sent immediately.",
    quietHours: "Quiet hours",
    quietEnabled: "Hold notifications during quiet hours",
    quietStart: "From",
    quietEnd: "Until",
    timezone: "Time zone",
    language: "Language",
    languages: { en: "English", fr: "Français" } as Record<string, string>,
    saved: "Saved",
    saving: "Saving…",
    frequencyOf: (type: string) => `${type} — frequency`,
    digestHourOf: (type: string) => `${type} — digest hour`,
  },
  fr: {
    bell: (n: number) => `Notifications, ${n} non lues`,
    panelTitle: "Notifications",
    markRead: "Marquer comme lu",
    markAllRead: "Tout marquer comme lu",
    archive: "Archiver",
    viewIssue: "Voir le ticket",
    unread: "Non lu",
    empty: "Aucune notification",
    loading: "Chargement…",
    loadMore: "Afficher plus",
    live: "En direct",
    polling: "Mise à jour toutes les quelques secondes (flux en direct indisponible)",
    channels: { EMAIL: "E-mail", IN_APP: "Dans l'application", SMS: "SMS", PUSH: "Push" } as Record<string, string>,
    pushDevice: "Notifications sur cet appareil",
    pushUnsupported: "Ce navigateur ne peut pas recevoir de notifications push.",
    pushDenied: "Les notifications sont bloquées pour ce site : autorisez-les dans les paramètres du navigateur.",
    settingsTitle: "Paramètres de notification",
    type: "Notification",
    frequency: "Fréquence",
    frequencies: { IMMEDIATE: "Immédiatement", HOURLY: "Résumé horaire", DAILY: "Résumé quotidien" } as Record<string, string>,
    digestHour: "Heure du résumé",
    locked: "Toujours envoyé",
    criticalReason: "Critique : signale une panne en production, toujours envoyé immédiatement.",
    quietHours: "Heures calmes",
    quietEnabled: "Retenir les notifications pendant les heures calmes",
    quietStart: "De",
    quietEnd: "À",
    timezone: "Fuseau horaire",
    language: "Langue",
    languages: { en: "English", fr: "Français" } as Record<string, string>,
    saved: "Enregistré",
    saving: "Enregistrement…",
    frequencyOf: (type: string) => `${type} — fréquence`,
    digestHourOf: (type: string) => `${type} — heure du résumé`,
  },
};

export type Strings = (typeof STRINGS)["en"];

export function normalizeLocale(locale: string | undefined | null): Locale {
  return (locale ?? "en").toLowerCase().startsWith("fr") ? "fr" : "en";
}

export function strings(locale: Locale): Strings {
  return STRINGS[locale];
}

export function typeLabel(locale: Locale, type: string): string {
  return TYPES[locale][type] ?? type;
}

export const NOTIFICATION_TYPES = Object.keys(TYPES.en);

/** "3 minutes ago" / "il y a 3 minutes". */
export function timeAgo(locale: Locale, iso: string, now: number = Date.now()): string {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const format = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
  const steps: [number, Intl.RelativeTimeFormatUnit][] = [
    [60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [4.35, "week"], [12, "month"], [Infinity, "year"],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return format.format(Math.round(value), unit);
    value /= size;
  }
  return format.format(Math.round(value), "year");
}
