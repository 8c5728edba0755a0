// Sign-in and home: the user's upcoming consults, each with a `Join consult` link.
import { api, currentUser, signIn } from "./auth.js";
import { formatTime, h, render, sentence } from "./ui.js";

export function signInPage() {
  const error = h("p", { class: "error", role: "alert" });
  const email = h("input", { id: "email", type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "password", type: "password", name: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        error.textContent = "";
        try {
          await signIn(email.value, password.value);
        } catch (problem) {
          error.textContent = sentence(problem);
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { text: "Sign in to pawhub" }),
    h("label", { for: "email", text: "Email" }), email,
    h("label", { for: "password", text: "Password" }), password,
    button,
    error,
  );
  render(form);
  email.focus();
}

export async function homePage() {
  const user = currentUser();
  const list = h("ul", { class: "consults", "aria-labelledby": "upcoming-heading" });
  const links = [];
  if (user.role === "moderator" || user.role === "admin") {
    links.push(h("p", {}, h("a", { href: "/app/moderation", "data-route": "" }, "Open the moderation dashboard")));
  }
  render(h("h1", { text: `Hello, ${user.name}` }), ...links, h("h2", { id: "upcoming-heading", text: "Your upcoming consults" }), list);
  try {
    const consults = await api("GET", "/v1/consults");
    if (!consults.length) list.replaceWith(h("p", { text: "You have no upcoming consults." }));
    for (const consult of consults) {
      const other = user.id === consult.vet.id ? consult.owner.name : consult.vet.name;
      list.append(
        h("li", { class: "card" },
          h("p", { class: "what", text: `${consult.pet.name} with ${other}` }),
          h("p", {}, h("time", { datetime: consult.starts_at, text: formatTime(consult.starts_at) })),
          h("a", { class: "button primary", href: `/app/consults/${consult.id}`, "data-route": "" }, "Join consult")),
      );
    }
  } catch (error) {
    list.replaceWith(h("p", { role: "alert", text: `Your consults could not be loaded: ${sentence(error)}` }));
  }
}
