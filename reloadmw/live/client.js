/* reloadmw live reload: poll the middleware; reload once new code serves; show broken saves.
 *
 * The tag that loads this script carries the page's token (see reloadmw/live/version.py).
 * One poll at a time, about once a second; a closed tab polls no more, and the server
 * keeps nothing per tab. No inline script or style attribute: it runs under a
 * Content-Security-Policy of script-src 'self'; connect-src 'self'.
 */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.__reloadmwLive || !window.fetch) {
    return;
  }
  window.__reloadmwLive = true;
  var poll = me.getAttribute("data-poll");
  var period = Number(me.getAttribute("data-period")) || 1000;
  var base = Number(me.getAttribute("data-token"));
  var pagePending = me.getAttribute("data-pending") === "1";
  var KEY = "reloadmw.reloadedFor";
  var overlay = null;
  var shown = "";
  var quick = 0;
  var QUICK = 4;

  // A reload answered by a process that has not loaded what the reload was for (a module
  // it never imported) would reload again and again: take that version as seen. Not when
  // the page says its own code is about to be replaced.
  var behind = false;
  try {
    var reloadedFor = Number(sessionStorage.getItem(KEY));
    sessionStorage.removeItem(KEY);
    if (reloadedFor > base) {
      // The reload reached a process behind the one that asked for it (gunicorn swapping
      // its workers, say). If that process knows it, follow soon; else take it as seen.
      behind = pagePending;
      base = pagePending ? base : reloadedFor;
    }
  } catch (e) {}

  function style(element, css) {
    for (var name in css) {
      element.style[name] = css[name];
    }
    return element;
  }

  function add(parent, tag, text, css) {
    var element = style(document.createElement(tag), css || {});
    if (text) {
      element.textContent = text;
    }
    parent.appendChild(element);
    return element;
  }

  function show(errors) {
    var text = JSON.stringify(errors);
    if (text === shown) {
      return;
    }
    shown = text;
    if (overlay) {
      overlay.remove();
      overlay = null;
    }
    if (!errors.length) {
      return;
    }
    overlay = style(document.createElement("div"), {
      position: "fixed", inset: "0", zIndex: "2147483647", overflow: "auto",
      background: "rgba(20, 20, 24, 0.92)", color: "#eee", padding: "32px",
      font: "14px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
    });
    overlay.id = "reloadmw-overlay";
    var panel = add(overlay, "div", "", {
      maxWidth: "960px", margin: "0 auto", background: "#1e1e24", padding: "24px",
      borderTop: "4px solid #e5484d", borderRadius: "6px"
    });
    add(panel, "div", "reloadmw: a saved file does not compile", {
      color: "#ff8b8b", fontSize: "18px", fontWeight: "bold", marginBottom: "16px"
    });
    errors.forEach(function (error) {
      var where = error.file + (error.line !== null ? ":" + error.line : "");
      add(panel, "div", where, {color: "#8fd3ff", fontWeight: "bold", wordBreak: "break-all"});
      add(panel, "pre", error.message, {margin: "4px 0 16px", whiteSpace: "pre-wrap"});
    });
    add(panel, "div", "Still serving the code from before this save. " +
      "This page reloads by itself once the file compiles.", {color: "#aaa"});
    document.body.appendChild(overlay);
  }

  function next(ms) {
    setTimeout(check, ms);
  }

  function check() {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, 15000) : null;
    fetch(poll, {cache: "no-store", credentials: "same-origin",
                 signal: controller ? controller.signal : undefined})
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        clearTimeout(timer);
        if (answer.version > base && !answer.pending) {
          try {
            sessionStorage.setItem(KEY, String(answer.version));
          } catch (e) {}
          location.reload();
          return;
        }
        show(answer.errors || []);
        // A restart is on its way: ask again soon, a few times (an old gunicorn worker
        // answers on its kept-alive connection for up to a second); else when the
        // server says (under mod_wsgi, just before Apache's parent respawns daemons).
        quick = answer.restarting ? quick + 1 : 0;
        next(quick && quick <= QUICK ? 250 : Number(answer.next) || period);
      }, function () {
        clearTimeout(timer);
        next(period);
      });
  }

  next(behind ? 250 : Number(me.getAttribute("data-next")) || period);
})();
