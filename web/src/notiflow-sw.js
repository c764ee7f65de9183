// notiflow's service worker: shows a Web Push notification (the decrypted JSON payload notiflow sends:
// title, body, issue_id, link, notification_id) and, on click, opens the issue's link (notiflow's tracked
// /r/{code} link when click tracking is on, which records the click) or focuses a tab already on it.
// Served by `notiflow api` at /notiflow-sw.js; shipped in @notiflow/react as `@notiflow/react/notiflow-sw.js`.
self.addEventListener("push", (event) => {
  let data;
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: "notiflow", body: event.data ? event.data.text() : "" };
  }
  const title = data.title || "notiflow";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.issue_id || data.notification_id || undefined,
      data: { link: data.link || null, issue_id: data.issue_id || null, notification_id: data.notification_id || null },
    }),
  );
});

// The click is recorded by the link itself: with click tracking on, notiflow's push link is its /r/{code} link,
// which records CLICKED (and marks the notification read) as it redirects to the issue — so the worker opens
// it and never fetches it too (that would count the click twice). Pages of this origin are also told
// ({type: "notiflow:notificationclick", notification_id, issue_id, link}), e.g. to refresh their bell.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const link = data.link || null;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const report = { type: "notiflow:notificationclick", notification_id: data.notification_id || null, issue_id: data.issue_id || null, link };
      windows.forEach((client) => client.postMessage(report));
      if (!link) return undefined;
      const open = windows.find((client) => client.url === link && "focus" in client);
      return open ? open.focus() : self.clients.openWindow(link);
    }),
  );
});
