// The job picker (templates/_macros.html:job_picker): type part of a customer or job name and choose
// one of the jobs the server suggests (/jobs/lookup, at most 20, asked a moment after typing stops).
// Keyboard: ↓ and ↑ move through the suggestions (↓ in an empty box lists the first jobs), Enter
// chooses, Escape closes the list. The chosen job's id goes in the hidden field; typing again clears
// it, so what is sent is always what the box shows. A box left without a choice is sent as text and
// the server takes the one job it names.
(function () {
  var DELAY = 250; // ms after the last key before asking the server

  function setUp(box) {
    var input = box.querySelector('[data-job-text]');
    var hidden = box.querySelector('[data-job-id]');
    var list = box.querySelector('[data-job-list]');
    var status = box.querySelector('[data-job-status]');
    var url = box.getAttribute('data-lookup-url');
    var customerSelector = box.getAttribute('data-customer-select');
    var customer = customerSelector ? document.querySelector(customerSelector) : null;
    var help = status.getAttribute('data-help') || '';
    if (!input.value.trim()) hidden.value = ''; // an id the browser restored without its text: no choice
    var chosenLabel = hidden.value ? input.value : null;
    var timer = null, controller = null, asked = 0, jobs = [], active = -1;

    // The box becomes a combobox (ARIA 1.2) only with JavaScript; without, it is a plain text field.
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'false');
    input.setAttribute('aria-controls', list.id);

    function say(text) { status.textContent = text; }

    function close() {
      list.hidden = true;
      input.setAttribute('aria-expanded', 'false');
      input.removeAttribute('aria-activedescendant');
      active = -1;
    }

    function open() {
      if (!jobs.length || document.activeElement !== input) return;
      list.hidden = false;
      input.setAttribute('aria-expanded', 'true');
    }

    function show(found) {
      jobs = found;
      active = -1;
      list.textContent = '';
      found.forEach(function (job, i) {
        var item = document.createElement('li');
        item.id = list.id + '-' + i;
        item.className = 'list-group-item list-group-item-action';
        item.setAttribute('role', 'option');
        item.setAttribute('aria-selected', 'false');
        item.setAttribute('data-index', String(i));
        var name = document.createElement('span');
        name.className = 'd-block fw-semibold';
        name.textContent = job.job_name;
        var more = document.createElement('span');
        more.className = 'd-block small text-body-secondary';
        more.textContent = job.customer_name + (job.software ? ' · ' + job.software : '') + (job.archived ? ' · archived' : '');
        item.appendChild(name);
        item.appendChild(more);
        list.appendChild(item);
      });
    }

    function highlight(i) {
      var items = list.querySelectorAll('[role=option]');
      if (!items.length) return;
      active = (i + items.length) % items.length;
      items.forEach(function (item, n) {
        item.setAttribute('aria-selected', n === active ? 'true' : 'false');
        item.classList.toggle('active', n === active);
      });
      input.setAttribute('aria-activedescendant', items[active].id);
      items[active].scrollIntoView({block: 'nearest'});
    }

    function choose(i) {
      var job = jobs[i];
      if (!job) return;
      hidden.value = String(job.id);
      input.value = job.label;
      chosenLabel = job.label;
      close();
      say('Chosen: ' + job.label + (job.software ? ' (' + job.software + ')' : '') + (job.archived ? ', archived' : '') + '.');
      hidden.dispatchEvent(new Event('change', {bubbles: true}));
    }

    function search(thenHighlight) {
      clearTimeout(timer);
      var params = new URLSearchParams({q: input.value.trim()});
      if (customer && customer.value) params.set('customer', customer.value);
      if (controller) controller.abort();
      controller = new AbortController();
      var mine = ++asked;
      say('Looking for jobs…');
      fetch(url + '?' + params.toString(), {credentials: 'same-origin', headers: {'Accept': 'application/json'},
                                            signal: controller.signal})
        .then(function (r) {
          if ((r.headers.get('Content-Type') || '').indexOf('application/json') !== 0) {
            throw new Error('Your session has ended: reload the page (and log in again) to search for jobs.');
          }
          return r.json().then(function (body) {
            if (!r.ok) throw new Error(body.message || 'The job search failed (' + r.status + ').');
            return body;
          });
        })
        .then(function (body) {
          if (mine !== asked) return; // an older answer that arrived late
          show(body.jobs);
          if (!body.jobs.length) {
            close();
            say(customer && customer.value ? 'No job of the chosen customer matches.' : 'No job matches: try another part of the name.');
            return;
          }
          open();
          if (thenHighlight) highlight(0);
          var n = body.jobs.length;
          say((body.more ? 'The first ' + n + ' matching jobs' : n + (n === 1 ? ' matching job' : ' matching jobs')) +
              (body.more ? ': type more to narrow them down.' : ': choose with ↓ ↑ and Enter, or tap one.'));
        })
        .catch(function (err) {
          if (err.name === 'AbortError' || mine !== asked) return;
          close();
          say(err.message || 'The job search failed.');
        });
    }

    input.addEventListener('input', function () {
      if (hidden.value && input.value !== chosenLabel) { // typed over the chosen job: no choice any more
        hidden.value = '';
        chosenLabel = null;
        hidden.dispatchEvent(new Event('change', {bubbles: true}));
      }
      clearTimeout(timer);
      if (!input.value.trim()) {
        asked++; // an answer still on its way is no longer wanted
        jobs = [];
        close();
        say(help);
        return;
      }
      timer = setTimeout(function () { search(false); }, DELAY);
    });

    input.addEventListener('keydown', function (ev) {
      if (ev.isComposing) return; // keys that compose a character (an input method) are not commands
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        if (list.hidden) {
          if (jobs.length && !hidden.value) { open(); highlight(ev.key === 'ArrowDown' ? 0 : -1); }
          else { search(true); }
          return;
        }
        highlight(active + (ev.key === 'ArrowDown' ? 1 : -1));
      } else if (ev.key === 'Enter') {
        if (list.hidden) return; // the form is sent as usual
        ev.preventDefault(); // an open list: Enter chooses, it never sends the form half-way
        if (active >= 0) choose(active);
        else if (jobs.length === 1) choose(0);
        else highlight(0);
      } else if (ev.key === 'Escape') {
        if (!list.hidden) { ev.preventDefault(); close(); }
      } else if (ev.key === 'Tab') {
        close();
      }
    });

    // Choosing with the mouse or a finger: keep the focus in the box, then take the tapped job.
    list.addEventListener('mousedown', function (ev) { ev.preventDefault(); });
    list.addEventListener('click', function (ev) {
      var item = ev.target.closest('[role=option]');
      if (item) choose(Number(item.getAttribute('data-index')));
    });
    input.addEventListener('blur', close);

    if (customer) {
      customer.addEventListener('change', function () {
        jobs = [];
        close();
        if (input.value.trim() && !hidden.value) search(false);
      });
    }
  }

  document.querySelectorAll('[data-job-picker]').forEach(setUp);
})();
