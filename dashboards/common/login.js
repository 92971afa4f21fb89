// The pages' common start: a token from the link or storage resumes the session, else the login
// form asks for one; `start(session)` runs once logged in. A "logout" button, if present, forgets it.
import { tokenFromFragment } from "./api.js";

export async function boot(client, start) {
  const $ = (id) => document.getElementById(id);
  $("logout")?.addEventListener("click", () => { client.logout(); location.reload(); });
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await start(await client.login($("token").value.trim()));
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });
  const fromLink = tokenFromFragment();
  const session = fromLink ? await client.login(fromLink).catch(() => null) : await client.resume();
  if (session) await start(session);
  else $("login").hidden = false;
}
