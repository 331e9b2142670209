// The task page's countdown of the time left to the task's deadline (data-deadline, epoch milliseconds),
// and Alt+S for Skip.
(function () {
  "use strict";
  var timer = document.getElementById("time-left");
  if (timer) {
    var deadline = Number(timer.dataset.deadline);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var tick = function () {
      var left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
      var hours = Math.floor(left / 3600);
      var minutes = Math.floor((left % 3600) / 60);
      var seconds = left % 60;
      timer.textContent = left === 0 ? "time is up" :
        (hours ? hours + ":" + pad(minutes) : String(minutes)) + ":" + pad(seconds);
      timer.parentElement.classList.toggle("late", left < 60);
      if (left > 0) { window.setTimeout(tick, 1000 - (Date.now() % 1000)); }
    };
    tick();
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey && !event.ctrlKey && !event.metaKey && (event.key === "s" || event.key === "S")) {
      var skip = document.getElementById("skip-button");
      if (skip) { event.preventDefault(); skip.click(); }
    }
  });
})();
