// The console's only script: keeps the inbox current. The server sends an `inbox` event
// (server-sent events, /console/events) whenever the reviewer's pending approvals change;
// the rows are then fetched again as server-rendered HTML and swapped in. Without
// JavaScript the inbox still works: reload to see changes.
'use strict';

(function () {
  const table = document.getElementById('inbox');
  const body = document.getElementById('inbox-rows');
  if (!table || !body || !window.EventSource) return;

  let busy = false;
  let again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(table.dataset.rows, { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (answer.ok) {
        body.innerHTML = await answer.text();
        table.dataset.refreshed = String((Number(table.dataset.refreshed) || 0) + 1);
      } else if (answer.status === 401) {
        events.close();
      }
    } catch (_) {
      // The next event tries again.
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  const events = new EventSource('/console/events');
  events.addEventListener('inbox', refresh);
})();
