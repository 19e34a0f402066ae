// The service's scene rules (storyboard/scenes.py), repeated here so the composer can say how
// many scenes a duration makes and a frame can name its beat when the plan does not.

// The same rule as storyboard.scenes.scene_count_for: one scene per 5 s, 3 to 10.
export function sceneCountFor(duration) {
  return Math.max(3, Math.min(10, Math.floor(duration / 5)));
}

// The same rule as storyboard.scenes.beat_for.
export function beatFor(number, total) {
  if (number === 1) return "Opening/Hook";
  if (number === total) return "Closing/CTA";
  if (number === 2) return "Context/Setup";
  return "Content/Product showcase";
}
