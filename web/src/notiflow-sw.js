// notiflow's service worker: shows a Web Push notification (the decrypted JSON payload notiflow sends:
// title, body, issue_id, link, notification_id) and, on click, opens the issue's link (notiflow's tracked
// /r/{code} link when click tracking is on, which records the click) or focuses a tab already on it.
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

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const link = event.notification.data && event.notification.data.link;
  if (!link) return;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((client) => client.url === link && "focus" in client);
      return open ? open.focus() : self.clients.openWindow(link);
    }),
  );
});
