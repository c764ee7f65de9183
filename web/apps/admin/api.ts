import { ApiError, NotiflowApi } from "../../src/api";
export type { Channel, NotificationType, Schemas } from "../../src/api";

export const TOKEN_KEY = "notiflow.admin.token";
export const api = new NotiflowApi("", { getToken: () => sessionStorage.getItem(TOKEN_KEY) ?? "" });
export { ApiError };

export function query(params: Record<string, string | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "short", timeStyle: "medium" }) : "—";
}

export const TYPES = [
  "ISSUE_CREATED", "ISSUE_ASSIGNED", "ISSUE_STATUS_CHANGED", "ISSUE_RESOLVED", "ISSUE_COMMENT_ADDED", "ISSUE_REOPENED",
  "HIGH_PRIORITY_ISSUE", "AUTO_ISSUE_DETECTED", "ISSUE_OVERDUE", "DAILY_ISSUE_SUMMARY", "WEEKLY_ISSUE_REPORT",
  "SYSTEM_ERROR_SPIKE",
];
export const CHANNELS = ["EMAIL", "IN_APP", "SMS", "WEBHOOK", "SLACK", "TEAMS"];
export const STATUSES = ["PENDING", "SENT", "FAILED", "CANCELLED"];
