// DOM helpers every part of the studio shares: element lookups, the error boxes, text set only
// when it changes, text boxes that grow to their text, and focus that survives its control.

export const $ = (selector, root = document) => root.querySelector(selector);
export const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

// One line of message as text, several (a 422 naming many fields) as a list.
export function showError(element, error) {
  if (!error) {
    element.hidden = true;
    element.textContent = "";
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  const lines = message.split("\n").filter(Boolean);
  element.replaceChildren();
  if (lines.length > 1) {
    const list = document.createElement("ul");
    for (const line of lines) {
      const item = document.createElement("li");
      item.textContent = line;
      list.append(item);
    }
    element.append(list);
  } else {
    element.textContent = message;
  }
  element.hidden = false;
}

// Live updates re-render often: text is replaced only when it changes, so a selection in it
// survives and a live region does not announce it again.
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

// Grow a text box to its text, so a long description is read whole, not through a slot.
export function fitToText(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${textarea.scrollHeight + 2}px`;
}

// Keyboard users keep their place when the control they used disappears or is disabled.
export function focusAfter(control) {
  if (control && !control.hidden && !control.disabled) control.focus();
  else $("#workspace").focus({ preventScroll: true });
}
