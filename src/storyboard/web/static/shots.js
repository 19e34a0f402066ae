// The shot vocabulary (storyboard/shots.py): the words the shot form offers, and a scene's shot
// written short for its frame card and in words for the tooltip.

// The shot vocabulary of storyboard/shots.py: value -> [words for people, SHORT].
const SHOT_SIZES = {
  extreme_wide: ["Extreme wide", "EWS"], wide: ["Wide", "WS"], full: ["Full", "FS"],
  medium: ["Medium", "MS"], medium_close_up: ["Medium close-up", "MCU"],
  close_up: ["Close-up", "CU"], extreme_close_up: ["Extreme close-up", "ECU"],
  insert: ["Insert (a detail)", "INSERT"],
};
const CAMERA_ANGLES = {
  eye_level: ["Eye level", "EYE LEVEL"], high: ["High, looking down", "HIGH"],
  low: ["Low, looking up", "LOW"], overhead: ["Overhead", "OVERHEAD"],
  dutch: ["Dutch (tilted)", "DUTCH"], pov: ["Point of view", "POV"],
  over_the_shoulder: ["Over the shoulder", "OTS"],
};
const CAMERA_MOVEMENTS = {
  static: ["Static", "STATIC"], pan: ["Pan", "PAN"], tilt: ["Tilt", "TILT"],
  dolly_in: ["Dolly in", "DOLLY IN"], dolly_out: ["Dolly out", "DOLLY OUT"],
  truck: ["Truck (alongside)", "TRUCK"], crane: ["Crane", "CRANE"],
  handheld: ["Handheld", "HANDHELD"], zoom_in: ["Zoom in", "ZOOM IN"],
  zoom_out: ["Zoom out", "ZOOM OUT"],
};
const TRANSITIONS = {
  cut: ["Cut", "CUT"], dissolve: ["Dissolve", "DISSOLVE"], fade_in: ["Fade in", "FADE IN"],
  fade_out: ["Fade out", "FADE OUT"], match_cut: ["Match cut", "MATCH CUT"], wipe: ["Wipe", "WIPE"],
};
// A scene's field name -> its words: the shot form's selects are filled from these.
export const SHOT_FIELDS = {
  shot_size: SHOT_SIZES, camera_angle: CAMERA_ANGLES, camera_movement: CAMERA_MOVEMENTS,
  transition: TRANSITIONS,
};

// "MCU \u00b7 LOW \u00b7 DOLLY IN", as storyboard.shots.shot_line writes it; "" without shot fields.
export function shotLine(scene) {
  return [[scene.shot_size, SHOT_SIZES], [scene.camera_angle, CAMERA_ANGLES],
    [scene.camera_movement, CAMERA_MOVEMENTS]]
    .filter(([value]) => value)
    .map(([value, words]) => words[value]?.[1] ?? String(value).toUpperCase())
    .join(" \u00b7 ");
}

// The same shot in words, for the tooltip of its abbreviations.
export function shotWords(scene) {
  const parts = [];
  if (scene.shot_size) parts.push(`${SHOT_SIZES[scene.shot_size]?.[0] ?? scene.shot_size} shot`);
  if (scene.camera_angle) parts.push(`${CAMERA_ANGLES[scene.camera_angle]?.[0] ?? scene.camera_angle} angle`);
  if (scene.camera_movement) parts.push(`camera ${(CAMERA_MOVEMENTS[scene.camera_movement]?.[0] ?? scene.camera_movement).toLowerCase()}`);
  if (scene.transition && scene.transition !== "cut") parts.push(`then ${(TRANSITIONS[scene.transition]?.[0] ?? scene.transition).toLowerCase()}`);
  return parts.join(", ");
}
