// DOM helpers shared by every page: building elements, errors as sentences, live announcements.

/** An element with attributes (on* keys become listeners) and children (strings or nodes). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

/** A sentence for an error: a problem+json detail, an ack's error message, or an exception. */
export function sentence(error) {
  const text = (error && (error.message || error.detail || error.title)) || String(error);
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** Show an error in the page's alert region (never swallowed). */
export function showError(error) {
  const notice = document.getElementById("notice");
  notice.textContent = sentence(error);
  notice.hidden = false;
}

export function clearError() {
  const notice = document.getElementById("notice");
  notice.hidden = true;
  notice.textContent = "";
}

let leaving = []; // what the page shown holds open, ended when another page shows

/** Run `end` when the router shows another page (or signs out): a page's sockets, calls and
 * camera end with it, not only through its own buttons. */
export function onPageLeave(end) {
  leaving.push(end);
}

export function leavePage() {
  const ends = leaving;
  leaving = [];
  for (const end of ends) end();
}

/** Replace the main region's content and move focus there for screen readers. */
export function render(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  return main;
}

export function formatTime(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}
