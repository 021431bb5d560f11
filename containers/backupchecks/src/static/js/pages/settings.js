// Settings: bring the mail test result into view; load the mailbox's folders for the folder fields.
(function () {
  // On a phone the test result sits below the long form: bring it into view after Test connection
  // (with the buttons just above it); where it is already on screen nothing moves.
  var result = document.getElementById('mail-test-result');
  if (result) { result.scrollIntoView({block: 'nearest', behavior: 'instant'}); }
})();
(function () {
  var btn = document.getElementById('load-folders');
  if (!btn) return;
  btn.addEventListener('click', function () {
    var status = document.getElementById('folder-status');
    status.textContent = 'Loading folders…';
    fetch(btn.getAttribute('data-url'), {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (!d.ok) { status.textContent = d.error; status.className = 'small mt-2 text-danger'; return; }
        var list = document.getElementById('folder-list');
        list.innerHTML = '';
        d.folders.forEach(function (p) { var o = document.createElement('option'); o.value = p; list.appendChild(o); });
        status.textContent = d.folders.length + ' folders loaded: pick them in the folder fields.';
        status.className = 'small mt-2 text-success';
      })
      .catch(function () { status.textContent = 'Could not load the folders.'; status.className = 'small mt-2 text-danger'; });
  });
})();
