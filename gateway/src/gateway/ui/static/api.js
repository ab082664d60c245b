// The public API (CONTRACT §2) as small functions: the bearer token, the JSON envelope, errors.

const TOKEN_KEY = "aigcspace.token";

/** An error answer of the API: its HTTP status and the envelope's one-sentence message. */
export class ApiError extends Error {
  constructor(status, message, data = null) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

let unauthorizedHandler = () => {};

/** Called whenever the API answers 401: the token is gone or expired, so the page signs out. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY),
  set: (value) => localStorage.setItem(TOKEN_KEY, value),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

export function authHeaders() {
  const value = token.get();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

/** Turn a non-2xx response into an ApiError, reading the envelope when there is one. */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's error page, say
  }
  const message = body && typeof body.message === "string" ? body.message : response.statusText;
  const error = new ApiError(response.status, message || `HTTP ${response.status}`, body?.data ?? null);
  if (response.status === 401) unauthorizedHandler(error);
  return error;
}

/** Call the API and return the envelope's `data`. */
export async function request(method, path, body) {
  return (await send(method, path, body)).data;
}

/** Call the API and return the envelope's `data` and the response's headers. */
async function send(method, path, body) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check your connection and try again.");
  }
  if (!response.ok) throw await errorFrom(response);
  const envelope = await response.json();
  return { data: envelope.data, headers: response.headers };
}

/** One page of the caller's conversations, newest first, and how many there are in all. */
async function conversationPage(limit, offset) {
  const { data, headers } = await send("GET", `/api/conversations?limit=${limit}&offset=${offset}`);
  return { items: data, total: Number(headers.get("X-Total-Count") ?? data.length) };
}

export const api = {
  register: (username, password) => request("POST", "/api/auth/register", { username, password }),
  login: (username, password) => request("POST", "/api/auth/login", { username, password }),
  me: () => request("GET", "/api/users/me"),
  setApiKey: (apikey) => request("PUT", "/api/users/me/apikey", { apikey }),
  removeApiKey: () => request("DELETE", "/api/users/me/apikey"),
  models: () => request("GET", "/api/llm/models"),
  conversationPage,
  conversation: (id) => request("GET", `/api/conversations/${id}`),
  rename: (id, title) => request("PUT", `/api/conversations/${id}`, { title }),
  remove: (id) => request("DELETE", `/api/conversations/${id}`),
};

/** One readable sentence for a 422 answer: the field errors the envelope carries in `data`. */
export function describeValidation(error) {
  if (error.status !== 422 || !Array.isArray(error.data) || error.data.length === 0) return error.message;
  return error.data
    .map((item) => {
      const field = Array.isArray(item.loc) ? item.loc[item.loc.length - 1] : "";
      const name = typeof field === "string" ? field.charAt(0).toUpperCase() + field.slice(1) : "";
      return name ? `${name}: ${item.msg}` : item.msg;
    })
    .join(" ");
}
