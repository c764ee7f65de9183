import { useCallback, useEffect, useState } from "react";
import { ApiError, NotificationSettingsData, PreferencesUpdate } from "./api";
import { useNotiflow } from "./context";

export interface UsePreferences {
  settings: NotificationSettingsData | null;
  loading: boolean;
  /** Why the settings could not be read (not a save's validation error: save() throws those as ApiError). */
  error: string | null;
  /** PUT the fields given; resolves to the stored settings, or throws ApiError (422: `detail`, `errors`). */
  save: (update: PreferencesUpdate) => Promise<NotificationSettingsData>;
  reload: () => Promise<void>;
}

/** The signed-in person's notification settings (GET/PUT /api/v1/notifications/preferences). */
export function usePreferences(): UsePreferences {
  const { api } = useNotiflow();
  const [settings, setSettings] = useState<NotificationSettingsData | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    setLoading(true);
    try {
      setSettings(await api.preferences());
      setError(null);
    } catch (failure) {
      setError((failure as ApiError).detail ?? String(failure));
    } finally {
      setLoading(false);
    }
  }, [api]);

  // The first read (again when the API changes); an answer for an API no longer used is dropped.
  useEffect(() => {
    let current = true;
    api.preferences().then(
      (loaded) => {
        if (!current) return;
        setSettings(loaded);
        setError(null);
        setLoading(false);
      },
      (failure) => {
        if (!current) return;
        setError((failure as ApiError).detail ?? String(failure));
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
  }, [api]);

  const save = useCallback(
    async (update: PreferencesUpdate) => {
      const stored = await api.savePreferences(update);
      setSettings(stored);
      return stored;
    },
    [api],
  );

  return { settings, loading, error, save, reload };
}
