// Calls to /api/v1; problem+json errors become ApiError with the fields named.
export class ApiError extends Error {
  constructor(problem) {
    const fields = (problem.errors || []).map((e) => `${e.field}: ${e.reason}`).join("\n");
    super(fields || problem.detail || problem.title || "request failed");
    this.problem = problem;
    this.status = problem.status;
  }
}

export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`/api/v1${path}`, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ title: response.statusText, status: response.status }));
  if (!response.ok) throw new ApiError({ status: response.status, ...data });
  return data;
}

let metaCache = null;
export async function meta() {
  if (!metaCache) {
    const [kinds, examples] = await Promise.all([api("/kinds"), api("/examples")]);
    metaCache = { kinds, examples, byKind: Object.fromEntries(kinds.map((k) => [k.kind, k])) };
  }
  return metaCache;
}

const catalogCache = {};
export async function catalogCategory(category) {
  if (!catalogCache[category]) catalogCache[category] = await api(`/catalog/${category}`);
  return catalogCache[category];
}

export const ownerTokens = {
  get: (id) => localStorage.getItem(`dse-owner-${id}`),
  set: (id, token) => localStorage.setItem(`dse-owner-${id}`, token),
  drop: (id) => localStorage.removeItem(`dse-owner-${id}`),
};
