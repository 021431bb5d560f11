// Settings → Notifications: the channel form shows the fields of the chosen kind only (recipients and
// transport for e-mail, the URL for the others, the signing secret for webhooks). Each such field sits
// in a [data-kinds="kind kind …"] box; without JavaScript every box stays visible.
(function () {
  var kind = document.getElementById('kind');
  if (!kind) return;
  var boxes = document.querySelectorAll('#channel-form [data-kinds]');
  function show() {
    boxes.forEach(function (box) {
      box.hidden = box.getAttribute('data-kinds').split(' ').indexOf(kind.value) < 0;
    });
  }
  kind.addEventListener('change', show);
  show();
})();
