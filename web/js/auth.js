// The signed-in session, kept in memory only: the access token is refreshed a minute before it
// expires (and open sockets renew theirs with it); signing out revokes the refresh token's
// family on the server.
import { request } from "./api.js";

const REFRESH_MARGIN_S = 60;
let session = null; // {user, access_token, refresh_token}
let refreshTimer = null;
const listeners = new Set();
const refreshListeners = new Set();

export const currentUser = () => (session ? session.user : null);
export const accessToken = () => (session ? session.access_token : null);

/** Call `listener(user | null)` whenever someone signs in or out. */
export function onSessionChange(listener) {
  listeners.add(listener);
}

/** Call `listener(accessToken)` whenever the access token is refreshed; returns the call
 * that stops it. */
export function onTokenRefresh(listener) {
  refreshListeners.add(listener);
  return () => refreshListeners.delete(listener);
}

function start(answer) {
  session = answer;
  clearTimeout(refreshTimer);
  const seconds = Math.max(answer.expires_in - REFRESH_MARGIN_S, 10);
  refreshTimer = setTimeout(refresh, seconds * 1000);
}

async function refresh() {
  try {
    start(await request("POST", "/v1/auth/refresh", { body: { refresh_token: session.refresh_token } }));
  } catch {
    end(); // the refresh token was revoked or spent: sign in again
    return;
  }
  for (const listener of refreshListeners) listener(session.access_token);
}

function end() {
  session = null;
  clearTimeout(refreshTimer);
  for (const listener of listeners) listener(null);
}

export async function signIn(email, password) {
  start(await request("POST", "/v1/auth/login", { body: { email, password } }));
  for (const listener of listeners) listener(session.user);
}

export async function signOut() {
  const token = session && session.refresh_token;
  end();
  if (token) await request("POST", "/v1/auth/logout", { body: { refresh_token: token } });
}

/** The API called with the current access token. */
export const api = (method, path, body) => request(method, path, { token: accessToken(), body });
