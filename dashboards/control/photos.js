// Photos from the roadside in the control room: an alert's (shipment details) and a case's (case
// panel). Thumbnails with when, where, who and the SHA-256; the full image in a dialog on click.
// Images are fetched with the bearer token (an <img src> cannot carry it) and shown as blob URLs.
import { escapeHtml } from "/static/format.js";
import { formatDateTime, formatNumber, t } from "/static/i18n.js";

// A <div class="photos"> listing the photos at `path` (GET /alerts/{id}/photos or
// /cases/{id}/photos), filled when the list arrives: a heading and the photos, or (if
// `showEmpty`) "No photos.", or nothing.
export function photosBlock(client, path, { showEmpty = true } = {}) {
  const block = document.createElement("div");
  block.className = "photos";
  fill(client, path, block, showEmpty);
  return block;
}

async function fill(client, path, block, showEmpty) {
  const heading = `<h4>${escapeHtml(t("control.photos.heading"))}</h4>`;
  let photos;
  try {
    photos = (await client.get(path)).items;
  } catch (e) {
    block.innerHTML = `${heading}<p class="error">${escapeHtml(t("control.photos.failed", { error: e.message }))}</p>`;
    return;
  }
  if (!photos.length) {
    block.innerHTML = showEmpty ? `${heading}<p class="muted">${escapeHtml(t("control.photos.none"))}</p>` : "";
    return;
  }
  block.innerHTML = `${heading}<ul></ul>`;
  block.querySelector("ul").replaceChildren(...photos.map((p) => item(client, p)));
}

// Chromium refuses timeZoneName together with dateStyle/timeStyle (i18n.js's defaults): the zone
// is written out instead (times are UTC).
function takenAt(iso) {
  return `${formatDateTime(iso, { timeZoneName: undefined })} UTC`;
}

function item(client, p) {
  const li = document.createElement("li");
  li.className = "photo";
  li.dataset.photo = p.id;
  const time = takenAt(p.taken_at);
  const where = p.lat == null ? t("control.photos.no_position") : t("control.photos.position", {
    lat: formatNumber(p.lat, { maximumFractionDigits: 5 }), lon: formatNumber(p.lon, { maximumFractionDigits: 5 }),
    accuracy: p.accuracy_m == null ? "?" : formatNumber(Math.round(p.accuracy_m)) });
  li.innerHTML = `
    <button type="button" class="thumb" aria-label="${escapeHtml(t("control.photos.open", { id: p.id }))}">
      <img alt="${escapeHtml(t("control.photos.alt", { id: p.id, time }))}" width="96"></button>
    <div class="photo-meta">
      <div>${escapeHtml(t("control.photos.taken", { time }))}</div>
      <div>${escapeHtml(where)}</div>
      <div>${escapeHtml(t("control.photos.by", { who: p.uploaded_by }))}</div>
      ${p.note ? `<div class="note">${escapeHtml(p.note)}</div>` : ""}
      <div><code class="sha256" title="${p.sha256}">${escapeHtml(t("control.photos.sha256", {
        hash: `${p.sha256.slice(0, 16)}…` }))}</code></div>
    </div>`;
  blobUrl(client, `/photos/${p.id}/thumbnail`).then((url) => { li.querySelector("img").src = url; })
    .catch(() => {});
  li.querySelector(".thumb").addEventListener("click", () => openFull(client, p, time));
  return li;
}

// Thumbnails are small (a few kB) and live as long as the page: their URLs are not revoked.
async function blobUrl(client, path) {
  const { blob } = await client.download(path);
  return URL.createObjectURL(blob);
}

// The full image in a modal <dialog> (Escape closes it, focus returns to the thumbnail).
async function openFull(client, p, time) {
  const dialog = document.createElement("dialog");
  dialog.className = "photo-full";
  dialog.setAttribute("aria-label", t("control.photos.alt", { id: p.id, time }));
  dialog.innerHTML = `<form method="dialog"><button type="submit" class="close">
      ${escapeHtml(t("control.photos.close"))}</button></form>
    <img alt="${escapeHtml(t("control.photos.alt", { id: p.id, time }))}">
    <p><code>SHA-256 ${p.sha256}</code></p>`;
  document.body.append(dialog);
  dialog.addEventListener("close", () => {
    const src = dialog.querySelector("img").src;
    if (src) URL.revokeObjectURL(src);
    dialog.remove();
  });
  dialog.showModal();
  try {
    dialog.querySelector("img").src = await blobUrl(client, `/photos/${p.id}`);
  } catch (e) {
    dialog.querySelector("img").replaceWith(Object.assign(document.createElement("p"), {
      className: "error", textContent: t("control.photos.failed", { error: e.message }) }));
  }
}
