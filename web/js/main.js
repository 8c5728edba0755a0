// The router: every /app/ path shows the sign-in form until someone signs in, then its page.
// Navigation between pages stays inside this document, so the in-memory session survives it.
import { loadConfig } from "./api.js";
import { currentUser, onSessionChange, signOut } from "./auth.js";
import { consultPage } from "./consult.js";
import { homePage, signInPage } from "./home.js";
import { moderationPage } from "./moderation.js";
import { clearError, h, leavePage, render, sentence, showError } from "./ui.js";

function route() {
  leavePage();
  clearError();
  const user = currentUser();
  document.getElementById("who").textContent = user ? `${user.name} (${user.role})` : "";
  document.getElementById("sign-out").hidden = !user;
  if (!user) return signInPage();
  const path = location.pathname.replace(/^\/app\/?/, "");
  const consult = path.match(/^consults\/([0-9a-f-]{36})$/i);
  if (consult) return consultPage(consult[1]);
  if (path === "moderation") return moderationPage();
  return homePage();
}

export function navigate(href) {
  history.pushState(null, "", href);
  route();
  document.getElementById("main").focus();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-route], a.brand");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", route);
window.addEventListener("unhandledrejection", (event) => showError(sentence(event.reason)));
document.getElementById("sign-out").addEventListener("click", () => {
  history.pushState(null, "", "/app/");
  signOut().catch(showError);
});
onSessionChange(() => route());

loadConfig().then(route, (error) => render(h("p", { role: "alert", text: sentence(error) })));
