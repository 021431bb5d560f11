// Recovery codes page: "Download as text" saves the codes shown on the page (they are not kept in
// clear on the server, so the page itself is the only copy).
(function () {
  "use strict";
  const button = document.getElementById("recovery-codes-download");
  const codes = document.getElementById("recovery-codes");
  if (!button || !codes) return;
  button.addEventListener("click", function () {
    const text = "Backupchecks recovery codes (each works once)\n\n" + codes.textContent.trim() + "\n";
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = button.dataset.filename || "recovery-codes.txt";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  });
})();
