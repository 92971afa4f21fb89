// The trucks in words: the map's text alternative, for the keyboard and screen readers. Worst state
// first (then by reference), each a button that opens the shipment's details; drawn only while its
// box is open, at most once a second however many positions arrive, and the first LIMIT only.
import { escapeHtml } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";
import { STATES, stateBadge, truckText } from "./trucks.js";

const LIMIT = 200;
const EVERY_MS = 1000;
const WORST_FIRST = Object.keys(STATES).reverse();

export class TruckList {
  constructor(list, box, trucks, onSelect) {
    this.list = list;
    this.box = box;
    this.trucks = trucks;
    this.drawnAt = 0;
    box.addEventListener("toggle", () => this.render(true));
    list.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-id]");
      if (b) onSelect(Number(b.dataset.id));
    });
  }

  render(now = false) {
    if (!this.box.open || (!now && Date.now() - this.drawnAt < EVERY_MS)) return;
    this.drawnAt = Date.now();
    const rank = (s) => WORST_FIRST.indexOf(s);
    const all = [...this.trucks.trucks.values()]
      .sort((a, b) => rank(a.state) - rank(b.state) || String(a.props.reference).localeCompare(b.props.reference));
    const items = all.slice(0, LIMIT).map((truck) => {
      const [reference, device, state] = truckText(truck).map(escapeHtml);
      return `<li><button type="button" class="truck" data-id="${truck.id}" data-state="${truck.state}">`
        + `${stateBadge(truck.state)} <strong>${reference}</strong> ${state} <span class="muted">${device}</span>`
        + "</button></li>";
    });
    if (all.length > LIMIT) {
      items.push(`<li class="muted">${escapeHtml(t("control.trucks.more", { n: formatNumber(all.length - LIMIT) }))}</li>`);
    }
    if (!all.length) items.push(`<li class="muted">${escapeHtml(t("control.trucks.none"))}</li>`);
    this.list.innerHTML = items.join("");
  }
}
