// Override form: show the fields of the chosen level only (the job picker is job_picker.js).
(function () {
  var form = document.getElementById('override-form');
  function level() { var c = form.querySelector('input[name=level]:checked'); return c ? c.value : ''; }
  function sync() {
    var l = level();
    form.querySelectorAll('[data-for-level]').forEach(function (box) {
      var on = box.getAttribute('data-for-level').split(' ').indexOf(l) >= 0;
      box.hidden = !on;
      // Fields of another level are not sent, so switching level never leaves a stray value behind.
      box.querySelectorAll(':scope > input, :scope > select, :scope > .row input, :scope > .mt-2 > input, :scope > .job-picker input').forEach(function (el) { el.disabled = !on; });
    });
  }
  form.querySelectorAll('input[name=level]').forEach(function (r) { r.addEventListener('change', sync); });
  sync();
})();
