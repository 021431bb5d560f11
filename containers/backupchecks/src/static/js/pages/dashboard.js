// Dashboard: the success-rate chart, drawn from the figures in the canvas's data-chart attribute.
(function () {
  var canvas = document.getElementById('success-chart');
  if (!canvas || !window.Chart) return;
  var d = JSON.parse(canvas.getAttribute('data-chart'));
  var dark = document.documentElement.getAttribute('data-bs-theme') === 'dark';
  var text = dark ? '#dee2e6' : '#495057', grid = dark ? 'rgba(255,255,255,.1)' : 'rgba(0,0,0,.08)';
  window.bcSuccessChart = new Chart(canvas, {
    type: 'line',
    data: {
      labels: d.labels,
      datasets: [{
        label: 'Success rate (%)', data: d.rates, spanGaps: false, tension: 0,
        borderColor: '#198754', backgroundColor: 'rgba(25,135,84,.15)', fill: true,
        pointRadius: 3, pointBackgroundColor: d.rates.map(function (r) {
          return r === null ? '#198754' : (r >= 95 ? '#198754' : (r >= 80 ? '#ffc107' : '#dc3545'));
        })
      }]
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: {
        y: {min: 0, max: 100, ticks: {color: text, callback: function (v) { return v + '%'; }}, grid: {color: grid}},
        x: {ticks: {color: text, maxRotation: 0, autoSkip: true, maxTicksLimit: 10}, grid: {color: grid}}
      },
      plugins: {
        legend: {display: false},
        tooltip: {callbacks: {
          title: function (items) { return d.days[items[0].dataIndex]; },
          label: function (item) {
            var i = item.dataIndex;
            return d.rates[i] === null ? 'no runs' : d.rates[i] + '% · ' + d.success[i] + ' of ' + d.totals[i] + ' runs successful';
          }
        }}
      }
    }
  });
})();
