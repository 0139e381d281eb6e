// The evidence form shows only the field of the kind chosen (file, link or note).
//
// Without this script every field shows, each under its own kind's radio, and the form works the same:
// the server checks only the chosen kind's field. GOV.UK Frontend's own conditional reveal is not used
// because it puts aria-expanded on radio buttons, which ARIA does not allow (axe-core: aria-allowed-attr).
// A field the server marked with an error carries no data-tracker-reveal, so it is never hidden.

const HIDDEN = "govuk-radios__conditional--hidden";

function sync(group) {
  for (const radio of group.querySelectorAll("input[type=radio][data-tracker-reveal]")) {
    const panel = document.getElementById(radio.dataset.trackerReveal);
    if (panel) panel.classList.toggle(HIDDEN, !radio.checked);
  }
}

for (const group of document.querySelectorAll("[data-tracker-reveal-group]")) {
  sync(group);
  group.addEventListener("change", () => sync(group));
  // A page restored from the back-forward cache keeps the radio the person chose.
  window.addEventListener("pageshow", () => sync(group));
}
