// Parser rule form: "Add a word" adds an empty status-word row (the form works without it: it always
// has a few empty rows).
(function () {
  var box = document.getElementById('status-rows');
  var add = document.getElementById('add-status-row');
  if (!box || !add) { return; }
  add.addEventListener('click', function () {
    var rows = box.querySelectorAll('.status-row');
    var last = rows[rows.length - 1];
    var n = rows.length + 1;
    var row = last.cloneNode(true);
    row.querySelectorAll('input, select, label').forEach(function (el) {
      ['id', 'name', 'for'].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.replace(/_\d+$/, '_' + n)); }
      });
      if (el.tagName === 'LABEL') { el.textContent = el.textContent.replace(/\d+$/, n); }
      if (el.tagName === 'INPUT') { el.value = ''; }
      if (el.tagName === 'SELECT') { el.selectedIndex = 0; }
    });
    box.appendChild(row);
    row.querySelector('input').focus();
  });
})();
