// The reader's preferences, in every page's header: the language (i18n.js) and the theme (light,
// dark, or as the device says). The theme is kept in localStorage "ctt.theme" and applied as
// data-theme="light|dark" on <html> (common.css holds both palettes); "system" follows the
// device's prefers-color-scheme, live. Importing this module applies the stored theme at once.
import { language, languages, setLanguage, t } from "./i18n.js";

const STORAGE = "ctt.theme";
export const THEMES = ["system", "light", "dark"];
const DARK = window.matchMedia("(prefers-color-scheme: dark)");

// The stored choice: "system", "light" or "dark".
export function themeChoice() {
  const stored = localStorage.getItem(STORAGE);
  return THEMES.includes(stored) ? stored : "system";
}

// The theme in use: "light" or "dark" (what data-theme says).
export function theme() {
  return document.documentElement.dataset.theme;
}

function apply() {
  const choice = themeChoice();
  const dark = choice === "dark" || (choice === "system" && DARK.matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  window.dispatchEvent(new CustomEvent("ctt-themechange", { detail: theme() }));
}

// Choose a theme (kept for the next visit); listeners of "ctt-themechange" on window redraw.
export function setTheme(choice) {
  if (!THEMES.includes(choice)) throw new Error(`unknown theme ${choice}: one of ${THEMES.join(", ")}`);
  localStorage.setItem(STORAGE, choice);
  apply();
}

apply();
DARK.addEventListener("change", () => { if (themeChoice() === "system") apply(); });

function labelled(id, options, value, onChange) {
  const label = document.createElement("label");
  label.htmlFor = id;
  const select = Object.assign(document.createElement("select"), { id });
  for (const [code, text, lang] of options) {
    const option = new Option(text, code, false, code === value);
    if (lang) option.lang = lang; // a language's own name, read in its own language
    select.append(option);
  }
  select.addEventListener("change", () => onChange(select.value));
  return [label, select];
}

// The language and theme selects, labelled, in `container` (a header); their labels follow the language.
export function mountPreferences(container) {
  const box = document.createElement("div");
  box.className = "prefs";
  const [langLabel, langSelect] = labelled("pref-language", languages().map((l) => [l.code, l.name, l.code]),
    language(), (code) => setLanguage(code));
  const [themeLabel, themeSelect] = labelled("pref-theme", THEMES.map((c) => [c, t(`common.theme.${c}`)]),
    themeChoice(), (choice) => setTheme(choice));
  const label = () => {
    langLabel.textContent = t("common.language");
    themeLabel.textContent = t("common.theme");
    for (const option of themeSelect.options) option.textContent = t(`common.theme.${option.value}`);
    langSelect.value = language();
  };
  label();
  window.addEventListener("ctt-languagechange", label);
  box.append(langLabel, langSelect, themeLabel, themeSelect);
  container.append(box);
  return box;
}
