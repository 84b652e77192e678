// Calls to the /v1/ routes with the signed-in bearer token. The token lives in sessionStorage
// only: it goes when the tab closes, and no other tab or later visit sees it.

const TOKEN = "junbao.token";

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function signIn(t) {
  sessionStorage.setItem(TOKEN, t);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Calls a route; answers the parsed JSON, or throws ApiError with the status and body. */
export async function api(path, { method = "GET", body, raw } = {}) {
  const headers = { Authorization: `Bearer ${token() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
    cache: "no-store",
    credentials: "omit",
  });
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { error: text };
  }
  if (!resp.ok) throw new ApiError(resp.status, json);
  return json;
}
