// Small helpers shared by every page.
(function () {
  // Copy-to-clipboard with fallbacks: Clipboard API, then execCommand, then a prompt.
  window.bcCopy = function (text) {
    function fallback() {
      var ta = document.createElement('textarea');
      ta.value = text; ta.setAttribute('readonly', ''); ta.style.position = 'absolute'; ta.style.left = '-9999px';
      document.body.appendChild(ta); ta.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      if (!ok) { window.prompt('Copy this text:', text); }
      return ok;
    }
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, fallback);
    }
    return Promise.resolve(fallback());
  };
  document.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-copy]');
    if (!btn) return;
    ev.preventDefault();
    Promise.resolve(window.bcCopy(btn.getAttribute('data-copy'))).then(function () {
      var old = btn.textContent; btn.textContent = 'Copied'; setTimeout(function () { btn.textContent = old; }, 1200);
    });
  });
  // Confirm before destructive actions: a whole form (data-confirm) or one of its buttons (data-confirm-click).
  document.addEventListener('submit', function (ev) {
    var msg = ev.target.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
  document.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-confirm-click]');
    if (btn && !window.confirm(btn.getAttribute('data-confirm-click'))) { ev.preventDefault(); }
  });
  // A select that submits its form when changed (the role switch in the top bar).
  document.addEventListener('change', function (ev) {
    var el = ev.target;
    if (el.hasAttribute && el.hasAttribute('data-autosubmit') && el.form) { el.form.submit(); }
  });
  // A random signing secret made in the browser (Settings → Notifications): 32 bytes as hex, shown
  // in the field so it can be copied into the receiver before the form is saved.
  document.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-generate-secret]');
    if (!btn) return;
    var input = document.getElementById(btn.getAttribute('data-generate-secret'));
    if (!input || !window.crypto) return;
    var bytes = new Uint8Array(32);
    window.crypto.getRandomValues(bytes);
    input.value = Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
    input.type = 'text';
    input.select();
  });
  // Tabs on one line that scroll sideways (Settings): the active tab is shown, not scrolled away.
  document.querySelectorAll('.settings-tabs').forEach(function (bar) {
    var active = bar.querySelector('.nav-link.active');
    if (active && bar.scrollWidth > bar.clientWidth) {
      bar.scrollLeft = active.offsetLeft - (bar.clientWidth - active.offsetWidth) / 2;
    }
  });
  // Bars sized by data (progress, the report preview's days): the Content-Security-Policy refuses
  // style="…" attributes, but sizes set through element.style are allowed.
  document.querySelectorAll('[data-bar-width]').forEach(function (el) {
    el.style.width = el.getAttribute('data-bar-width') + '%';
  });
  document.querySelectorAll('[data-bar-height]').forEach(function (el) {
    el.style.height = el.getAttribute('data-bar-height') + '%';
  });
})();

// Background work in progress (a task's card, a generated report's row in the list): poll its
// progress (data-task-url, JSON of services/tasks.py:progress_json) until it ends. Then reload the page
// (data-task-finish="reload": the row shows the download or the reason) or offer a reload.
(function () {
  document.querySelectorAll('[data-task-url]').forEach(function (box) {
    var url = box.getAttribute('data-task-url');
    var reload = box.getAttribute('data-task-finish') === 'reload';
    var bar = box.querySelector('.progress-bar');
    var meter = box.querySelector('[role=progressbar]');
    var msg = box.querySelector('.task-message');
    function tick() {
      fetch(url, {headers: {'Accept': 'application/json'}, credentials: 'same-origin'})
        .then(function (r) { return r.json(); })
        .then(function (t) {
          if (t.status === 'error') {  // 404: another user's task, or gone; stop asking
            msg.textContent = 'This progress is not available to you: ' + t.message;
            box.setAttribute('data-task-state', 'unavailable');
            return;
          }
          var finished = t.state === 'done' || t.state === 'failed';
          if (finished && reload) { window.location.reload(); return; }
          msg.textContent = t.message || t.state;
          if (t.percent !== null && t.percent !== undefined) { bar.style.width = t.percent + '%'; }
          if (meter) { meter.setAttribute('aria-valuenow', t.progress); }
          if (finished) {
            bar.style.width = '100%';
            bar.classList.add(t.state === 'done' ? 'bg-success' : 'bg-danger');
            box.setAttribute('data-task-state', t.state);
            var again = box.querySelector('.task-reload');
            if (again) { again.hidden = false; }
            return;
          }
          setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    }
    tick();
  });
  // Select-all checkboxes and shift-click ranges for bulk actions.
  document.querySelectorAll('[data-select-all]').forEach(function (master) {
    master.addEventListener('change', function () {
      document.querySelectorAll(master.getAttribute('data-select-all')).forEach(function (cb) { cb.checked = master.checked; });
    });
  });
  var last = null;
  document.addEventListener('click', function (ev) {
    var cb = ev.target;
    if (!(cb instanceof HTMLInputElement) || cb.type !== 'checkbox' || !cb.hasAttribute('data-row-check')) return;
    if (ev.shiftKey && last) {
      var all = Array.prototype.slice.call(document.querySelectorAll('[data-row-check]'));
      var a = all.indexOf(last), b = all.indexOf(cb);
      all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (x) { x.checked = cb.checked; });
    }
    last = cb;
  });
})();
