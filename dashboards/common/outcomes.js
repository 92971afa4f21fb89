// The verdicts an alert is resolved with (protocol.alerts.Outcome): required by the API; the
// confirmed ones open a case on the shipment.
export const OUTCOMES = [
  ["false_alarm", "False alarm"], ["technical_fault", "Technical fault"],
  ["confirmed_irregularity", "Confirmed irregularity (opens a case)"], ["goods_seized", "Goods seized (opens a case)"],
  ["other", "Other"],
];

// A <select> of the outcomes, empty until the officer picks one.
export function outcomeSelect() {
  const select = document.createElement("select");
  select.className = "outcome";
  select.setAttribute("aria-label", "Outcome");
  select.append(new Option("Outcome… (required)", ""), ...OUTCOMES.map(([value, label]) => new Option(label, value)));
  select.addEventListener("click", (e) => e.stopPropagation());
  return select;
}
