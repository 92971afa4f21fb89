// Evidence from the roadside: a photo taken with the phone's camera, with the phone's position and
// the time, queued in the outbox (the image as a Blob in IndexedDB) and uploaded to
// POST /alerts/{id}/photos (image bytes as the body, metadata in the query) when online.
import { t } from "/static/i18n.js";

// The upload's path with its metadata: taken_at (RFC 3339), lat/lon/accuracy_m when the phone knows.
export function photoPath(alertId, takenAt, position) {
  const query = new URLSearchParams({ taken_at: takenAt });
  if (position) {
    query.set("lat", position.lat.toFixed(6));
    query.set("lon", position.lon.toFixed(6));
    if (position.accuracy != null) query.set("accuracy_m", String(Math.round(position.accuracy)));
  }
  return `/alerts/${alertId}/photos?${query}`;
}

// A "Take photo" button opening the camera (a hidden file input); `onPhoto(file)` with the picture.
export function photoControl(onPhoto) {
  const input = Object.assign(document.createElement("input"), { type: "file", accept: "image/*", hidden: true,
    className: "photo-input" });
  input.setAttribute("capture", "environment");
  input.setAttribute("aria-label", t("officer.photo.take"));
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) onPhoto(input.files[0]);
    input.value = "";
  });
  const button = Object.assign(document.createElement("button"), { type: "button", className: "photo",
    textContent: t("officer.photo.take") });
  button.addEventListener("click", () => input.click());
  const span = document.createElement("span");
  span.append(button, input);
  return span;
}
