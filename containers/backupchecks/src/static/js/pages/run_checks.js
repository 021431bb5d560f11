// Run Checks: the keyboard (j/k next/previous job, r review, o mail, t/m ticket/remark, s success, ? help).
(function () {
  // The next and previous job's addresses come from the page (data-next-url / data-prev-url on #queue-tools).
  var tools = document.getElementById('queue-tools');
  var nextUrl = tools && tools.getAttribute('data-next-url');
  var prevUrl = tools && tools.getAttribute('data-prev-url');
  document.addEventListener('keydown', function (ev) {
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) return;
    var firstRun = document.querySelector('.run-card');
    function open(sel) { var d = firstRun && firstRun.querySelector(sel); if (d) { d.open = true; var f = d.querySelector('input:not([type=hidden]), textarea'); if (f) f.focus(); ev.preventDefault(); } }
    switch (ev.key) {
      case 'j': if (nextUrl) window.location = nextUrl; break;
      case 'k': if (prevUrl) window.location = prevUrl; break;
      case 'r': var f = document.getElementById('review-job'); if (f) { ev.preventDefault(); f.submit(); } break;
      case 'o': var a = firstRun && firstRun.querySelector('.open-mail'); if (a) { window.open(a.href, '_blank', 'noopener'); } break;
      case 't': open('.ticket-form'); break;
      case 'm': open('.remark-form'); break;
      case 's': var s = firstRun && firstRun.querySelector('.mark-success button'); if (s) { s.focus(); ev.preventDefault(); } break;
      case '?': new bootstrap.Modal(document.getElementById('keys-help')).show(); break;
    }
  });
})();
