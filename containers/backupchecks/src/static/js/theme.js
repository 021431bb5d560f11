// Apply the "auto" theme before first paint so there is no flash.
(function () {
  var el = document.documentElement;
  if (el.getAttribute('data-theme-pref') === 'auto' && window.matchMedia &&
      window.matchMedia('(prefers-color-scheme: dark)').matches) {
    el.setAttribute('data-bs-theme', 'dark');
  }
})();
