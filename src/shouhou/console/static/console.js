// shouhou console: countdowns, live case updates, evidence uploads, the ruling preview,
// copy buttons. Plain JavaScript served from the package; the pages work without it except
// for uploads and the preview.
"use strict";
(function () {
  const body = document.body;
  const csrf = body.dataset.csrf || "";
  const units = (body.dataset.units || "d h min s").split(" ");
  const overdue = body.dataset.overdue || "0";

  // "2d 3h": the two largest units of the time left, in the page's language.
  function left(ms) {
    if (ms <= 0) return overdue;
    let s = Math.floor(ms / 1000);
    const parts = [86400, 3600, 60, 1].map(function (size) {
      const n = Math.floor(s / size); s -= n * size; return n;
    });
    const first = parts.findIndex(function (n) { return n > 0; });
    return parts.slice(first, first + 2)
      .map(function (n, i) { return n + units[first + i]; }).join(" ");
  }
  function tick() {
    const now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      const due = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(due)) el.textContent = left(due - now);
    });
  }
  tick();
  setInterval(tick, 1000);

  // A case page polls its version and swaps in its live part when the case changed, unless
  // someone is typing in one of its forms.
  const live = document.getElementById("live");
  function busy() {
    const active = document.activeElement;
    if (!active || !live.contains(active) || !active.form) return false;
    return Array.prototype.some.call(active.form.elements, function (el) {
      return (el.type === "text" || el.tagName === "TEXTAREA") && el.value !== "";
    });
  }
  if (live) {
    const base = "/console/cases/" + encodeURIComponent(live.dataset.case);
    setInterval(function () {
      fetch(base + "/version", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data || String(data.version) === live.dataset.version || busy()) return null;
          return fetch(base + "/live", { credentials: "same-origin", cache: "no-store" })
            .then(function (r) { return r.ok ? r.text() : null; })
            .then(function (html) {
              if (html === null) return;
              live.innerHTML = html;
              live.dataset.version = String(data.version);
              wire(live);
              tick();
            });
        })
        .catch(function () { /* offline for a moment: try again at the next poll */ });
    }, 3000);
  }

  function wire(root) {
    // Uploads: each chosen file is sent to /console/upload; its SHA-256 joins the hidden field.
    root.querySelectorAll("input.upload").forEach(function (input) {
      input.addEventListener("change", function () {
        const names = document.getElementById(input.dataset.target);
        const out = input.parentElement.querySelector("output.uploaded");
        Array.prototype.forEach.call(input.files, function (file) {
          fetch("/console/upload?filename=" + encodeURIComponent(file.name), {
            method: "POST", credentials: "same-origin", body: file,
            headers: { "X-CSRF-Token": csrf, "Content-Type": file.type || "application/octet-stream" }
          }).then(function (r) { return r.json().then(function (d) { return [r.ok, d]; }); })
            .then(function (res) {
              if (res[0]) {
                names.value = names.value ? names.value + "," + res[1].sha256 : res[1].sha256;
                out.textContent += (out.textContent ? ", " : "") + file.name + " ✓";
              } else {
                out.textContent += (out.textContent ? ", " : "") + file.name + ": " + res[1].error;
              }
            });
        });
      });
    });
    // The ruling preview: the same form, posted to the preview endpoint; nothing is saved.
    root.querySelectorAll("form.ruling .preview-button").forEach(function (button) {
      button.addEventListener("click", function () {
        const form = button.form;
        const out = form.querySelector("output.preview");
        fetch(form.dataset.preview, {
          method: "POST", credentials: "same-origin",
          body: new URLSearchParams(new FormData(form)),
        }).then(function (r) { return r.text(); }).then(function (html) { out.innerHTML = html; });
      });
    });
    root.querySelectorAll("button.copy").forEach(function (button) {
      button.addEventListener("click", function () {
        const text = document.getElementById(button.dataset.copy).textContent;
        if (navigator.clipboard) navigator.clipboard.writeText(text);
      });
    });
  }
  wire(document);

  // The apply form offers only the reasons the chosen kind allows.
  const kind = document.getElementById("apply-kind");
  const reason = document.getElementById("apply-reason");
  function reasons() {
    const allowed = (kind.selectedOptions[0].dataset.reasons || "").split(" ");
    Array.prototype.forEach.call(reason.options, function (option) {
      option.hidden = option.disabled = allowed.indexOf(option.value) < 0;
    });
    if (reason.selectedOptions[0] && reason.selectedOptions[0].disabled) {
      const first = Array.prototype.find.call(reason.options, function (o) { return !o.disabled; });
      if (first) reason.value = first.value;
    }
  }
  if (kind && reason) { kind.addEventListener("change", reasons); reasons(); }
})();
