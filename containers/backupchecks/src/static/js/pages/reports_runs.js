// Reports: poll the generated reports that are still queued or running.
(function () {
  // Poll queued/running reports; reload when one finishes so the download (or the reason) shows.
  var rows = document.querySelectorAll('tr[data-status-url]');
  if (!rows.length) return;
  function tick() {
    var pending = 0, finished = false, left = rows.length;
    rows.forEach(function (row) {
      fetch(row.getAttribute('data-status-url'), {headers: {'Accept': 'application/json'}, credentials: 'same-origin'})
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.state === 'done' || s.state === 'failed') { finished = true; }
          else {
            pending++;
            var bar = row.querySelector('.progress-bar'), msg = row.querySelector('.run-message');
            var pct = s.total ? Math.round(100 * s.progress / s.total) : 3;
            if (bar) { bar.style.width = pct + '%'; bar.parentNode.setAttribute('aria-valuenow', s.progress); }
            if (msg) { msg.textContent = (s.state === 'queued' ? 'Waiting to start' : 'Generating') + (s.total ? ': customer ' + s.progress + ' of ' + s.total : ''); }
          }
        })
        .catch(function () { pending++; })
        .finally(function () {
          left--;
          if (left === 0) { if (finished) { window.location.reload(); } else if (pending) { setTimeout(tick, 1000); } }
        });
    });
  }
  setTimeout(tick, 700);
})();
