// Shows why the last sign-in failed and keeps the page the user was headed for.
"use strict";
(function () {
  const query = new URLSearchParams(window.location.search);
  const next = query.get("next");
  if (next && next.startsWith("/") && !next.startsWith("//")) {
    document.getElementById("login-next").value = next;
  }
  const error = query.get("error");
  if (error) {
    const box = document.getElementById("login-error");
    box.textContent = error === "blocked"
      ? "Too many failed attempts for this name. Wait five minutes, or ask an administrator."
      : "Wrong name or password.";
    box.hidden = false;
  }
})();
