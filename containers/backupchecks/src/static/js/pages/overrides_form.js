// Override form: show the fields of the chosen level only; narrow the job list while typing.
(function () {
  var form = document.getElementById('override-form');
  function level() { var c = form.querySelector('input[name=level]:checked'); return c ? c.value : ''; }
  function sync() {
    var l = level();
    form.querySelectorAll('[data-for-level]').forEach(function (box) {
      var on = box.getAttribute('data-for-level').split(' ').indexOf(l) >= 0;
      box.hidden = !on;
      // Fields of another level are not sent, so switching level never leaves a stray value behind.
      box.querySelectorAll(':scope > input, :scope > select, :scope > .row input, :scope > .mt-2 > input').forEach(function (el) { el.disabled = !on; });
    });
  }
  form.querySelectorAll('input[name=level]').forEach(function (r) { r.addEventListener('change', sync); });
  sync();
  var search = document.getElementById('job-search'), select = document.getElementById('job_id');
  search.addEventListener('input', function () {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    select.querySelectorAll('option[data-search]').forEach(function (o) {
      var hay = o.getAttribute('data-search');
      o.hidden = !words.every(function (w) { return hay.indexOf(w) >= 0; });
    });
    select.querySelectorAll('optgroup').forEach(function (g) {
      g.hidden = !g.querySelector('option:not([hidden])');
    });
  });
})();
