import "./styles.css";

export { NotiflowProvider, useNotiflow, useInbox, useUnreadCount } from "./context";
export type { NotiflowProviderProps, UseInbox } from "./context";
export { usePreferences } from "./preferences";
export type { UsePreferences } from "./preferences";
export { usePushSubscription, subscribeThisDevice } from "./push";
export type { PushState, UsePushSubscription, PushOptions } from "./push";
export { InAppNotifications } from "./InAppNotifications";
export type { InAppNotificationsProps } from "./InAppNotifications";
export { NotificationSettings } from "./NotificationSettings";
export type { NotificationSettingsProps } from "./NotificationSettings";
export { ApiError, NotiflowApi } from "./api";
export type { InboxItem, InboxPage, NotificationSettingsData, PreferenceState, PreferencesUpdate, Schemas } from "./api";
export type { InboxState, InboxOptions, InboxMode } from "./inbox-store";
export { strings, typeLabel } from "./i18n";
