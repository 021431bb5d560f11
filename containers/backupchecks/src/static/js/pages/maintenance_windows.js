// Settings → Maintenance windows: typing in the one-off or the weekly fields chooses that kind of
// window, so a weekly window is not refused as a one-off because its radio button was not clicked.
(function () {
  document.querySelectorAll('#window-form [data-window-kind]').forEach(function (box) {
    var radio = box.querySelector('input[type=radio][name=kind]');
    if (!radio) return;
    box.addEventListener('input', function (ev) { if (ev.target !== radio) { radio.checked = true; } });
    box.addEventListener('change', function (ev) { if (ev.target !== radio) { radio.checked = true; } });
  });
})();
