import { useCallback, useEffect, useState } from "react";
import { ApiError, NotiflowApi, Schemas } from "./api";
import { useNotiflow } from "./context";

/** unsupported: no service worker / Push API here; denied: the person refused notifications; off / on: this device. */
export type PushState = "unsupported" | "denied" | "off" | "on";

export interface UsePushSubscription {
  state: PushState;
  busy: boolean;
  /** Why the last subscribe() / unsubscribe() failed (push not configured on the server, refused permission…). */
  error: string | null;
  subscribe: () => Promise<void>;
  unsubscribe: () => Promise<void>;
}

export interface PushOptions {
  /** The service worker's URL (`notiflow-sw.js`, served from the page's origin). */
  serviceWorkerUrl?: string;
}

function supported(): boolean {
  return typeof window !== "undefined" && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(padded);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** Subscribe this browser (permission, service worker, PushManager) and register the subscription with notiflow. */
export async function subscribeThisDevice(api: NotiflowApi, serviceWorkerUrl: string): Promise<void> {
  if ((await Notification.requestPermission()) !== "granted") throw new ApiError(0, "notifications are not allowed in this browser");
  const { public_key } = await api.vapidPublicKey();
  const registration = await navigator.serviceWorker.register(serviceWorkerUrl);
  await navigator.serviceWorker.ready;
  const subscription =
    (await registration.pushManager.getSubscription()) ??
    (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(public_key) }));
  await api.subscribePush(subscription.toJSON() as Schemas["PushSubscriptionIn"]);
}

/** Web Push on this device: its state, and subscribe() / unsubscribe() that keep the browser and notiflow in step. */
export function usePushSubscription(options: PushOptions = {}): UsePushSubscription {
  const { api } = useNotiflow();
  const serviceWorkerUrl = options.serviceWorkerUrl ?? "/notiflow-sw.js";
  const [state, setState] = useState<PushState>(() => (supported() ? "off" : "unsupported"));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!supported()) return;
    let current = true;
    (async () => {
      if (Notification.permission === "denied") return "denied" as const;
      const registration = await navigator.serviceWorker.getRegistration(serviceWorkerUrl);
      const subscription = registration ? await registration.pushManager.getSubscription() : null;
      if (!subscription) return "off" as const;
      const mine = await api.pushSubscriptions();
      return mine.some((s) => s.endpoint === subscription.endpoint) ? ("on" as const) : ("off" as const);
    })().then(
      (found) => current && setState(found),
      () => current && setState("off"),
    );
    return () => {
      current = false;
    };
  }, [api, serviceWorkerUrl]);

  const run = useCallback(async (action: () => Promise<PushState>) => {
    setBusy(true);
    try {
      setState(await action());
      setError(null);
    } catch (failure) {
      setError((failure as ApiError).detail ?? String(failure));
      if (supported() && Notification.permission === "denied") setState("denied");
    } finally {
      setBusy(false);
    }
  }, []);

  const subscribe = useCallback(
    () =>
      run(async () => {
        if (!supported()) return "unsupported";
        await subscribeThisDevice(api, serviceWorkerUrl);
        return "on";
      }),
    [api, run, serviceWorkerUrl],
  );

  const unsubscribe = useCallback(
    () =>
      run(async () => {
        if (!supported()) return "unsupported";
        const registration = await navigator.serviceWorker.getRegistration(serviceWorkerUrl);
        const subscription = registration ? await registration.pushManager.getSubscription() : null;
        if (subscription) {
          const mine = await api.pushSubscriptions();
          for (const s of mine.filter((s) => s.endpoint === subscription.endpoint)) await api.unsubscribePush(s.id);
          await subscription.unsubscribe();
        }
        return "off";
      }),
    [api, run, serviceWorkerUrl],
  );

  return { state, busy, error, subscribe, unsubscribe };
}
