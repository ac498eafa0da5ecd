// Keys for every answer (shown beside it), Enter to save, Z for the 2× view, and the time the page was
// actually in view. The form works without this script: radios, Tab and Enter do the same.
(function () {
  "use strict";
  const form = document.querySelector("[data-rating-form]");
  if (!form) return;
  const active = form.querySelector("[data-active]");
  const zoom = document.getElementById("zoom");
  let shownMs = 0;
  let since = document.visibilityState === "visible" ? performance.now() : null;
  const pause = () => { if (since !== null) { shownMs += performance.now() - since; since = null; } };
  const resume = () => { if (since === null && document.visibilityState === "visible") since = performance.now(); };
  document.addEventListener("visibilitychange", () => (document.visibilityState === "visible" ? resume() : pause()));
  window.addEventListener("blur", pause);
  window.addEventListener("focus", resume);
  form.addEventListener("submit", () => { pause(); active.value = (shownMs / 1000).toFixed(3); resume(); });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLAnchorElement) return;
    const key = event.key.length === 1 ? event.key.toUpperCase() : event.key;
    if (key === "Enter") {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (key === "Z") { zoom.checked = !zoom.checked; event.preventDefault(); return; }
    const radio = form.querySelector(`input[type=radio][data-key="${CSS.escape(key)}"]`);
    if (radio) { radio.checked = true; radio.focus(); event.preventDefault(); }
  });
})();
