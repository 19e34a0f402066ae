// The client of the service's /api/v2 endpoints: one fetch wrapper whose failures are
// ApiErrors carrying a message a person can read, a 422's fields named as the forms name them.
// Every call carries the bearer token (auth.js); a 401 waits for a token and tries again.

import { authHeaders, currentToken, tokenRefused } from "./auth.js";

export const API = "/api/v2";

const FIELD_LABELS = {
  prompt: "Prompt", duration: "Duration", style: "Style", aspect_ratio: "Aspect ratio",
  seed: "Seed", planner: "Planner", review_plan: "Plan first",
  description: "Description", image_prompt: "Image prompt",
  visual: "What the camera sees", shot_size: "Shot size", camera_angle: "Camera angle",
  camera_movement: "Camera movement", lighting: "Lighting", characters: "Characters",
  location: "Location", dialogue: "Dialogue", transition: "Transition",
  title: "Title", logline: "Logline", name: "Name", look: "Look", palette: "Palette",
  locations: "Locations", scenes: "Scenes", scene_number: "Scene",
};

export class ApiError extends Error {
  constructor(status, message, fields = []) {
    super(message);
    this.status = status;
    this.fields = fields; // [{field, msg}] from a 422 body
  }
}

// "characters[0].id" (where the service names an item of a list) reads as "Characters".
function fieldLabel(field) {
  return FIELD_LABELS[field] ?? FIELD_LABELS[field.split(/[[.]/)[0]] ?? field;
}

function errorFields(detail) {
  if (!Array.isArray(detail)) return [];
  return detail.map((item) => {
    const loc = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body") : [];
    return { field: loc.length ? String(loc[loc.length - 1]) : "", msg: String(item.msg ?? "") };
  });
}

export async function api(path, { method = "GET", body } = {}) {
  for (;;) {
    const token = currentToken();
    try {
      return await request(path, method, body, token);
    } catch (error) {
      // Refused for want of a (good) token: the user gives one, the same request goes again.
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      await tokenRefused(token, error);
    }
  }
}

async function request(path, method, body, token) {
  let response;
  try {
    const headers = { Accept: "application/json", ...authHeaders(token) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "Cannot reach the Storyboard service. Check your connection and try again.");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const detail = data?.detail;
    const fields = errorFields(detail);
    let message;
    if (fields.length) {
      message = fields.map((f) => (f.field ? `${fieldLabel(f.field)}: ${f.msg}` : f.msg)).join("\n");
    } else if (typeof detail === "string" && detail) {
      message = detail;
    } else {
      message = `The service answered ${response.status} ${response.statusText}`.trim();
    }
    throw new ApiError(response.status, message, fields);
  }
  return data;
}
