// The verdicts an alert is resolved with (protocol.alerts.Outcome): required by the API; the
// confirmed ones open a case on the shipment. Labels from the catalogues ("outcome.<value>").
import { t } from "./i18n.js";

export const OUTCOMES = ["false_alarm", "technical_fault", "confirmed_irregularity", "goods_seized", "other"];
const OPENS_CASE = new Set(["confirmed_irregularity", "goods_seized"]);

// A <select> of the outcomes, empty until the officer picks one.
export function outcomeSelect() {
  const select = document.createElement("select");
  select.className = "outcome";
  select.setAttribute("aria-label", t("common.outcome"));
  select.append(new Option(t("common.outcome.choose"), ""), ...OUTCOMES.map((value) => new Option(
    OPENS_CASE.has(value) ? t("common.outcome.opens_case", { outcome: t(`outcome.${value}`) }) : t(`outcome.${value}`),
    value)));
  select.addEventListener("click", (e) => e.stopPropagation());
  return select;
}
