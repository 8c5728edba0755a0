// The REST API at the origin the hub names in /app/config.json; errors become sentences.

let apiUrl = null;

export async function loadConfig() {
  const response = await fetch("/app/config.json");
  if (!response.ok) throw new Error("the page could not load its configuration");
  apiUrl = (await response.json()).api_url;
}

/** Error from the API: `detail` of its problem+json (RFC 9457), `status` its HTTP status. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** Call the API; `token` is the access token (omitted for sign-in). */
export async function request(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "the server cannot be reached; check your connection");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && (data.detail || data.title);
    throw new ApiError(response.status, detail || `the server answered ${response.status}`);
  }
  return data;
}
