// The quiz's small JavaScript layer. The pages work without it (plain forms); with it, answers are
// posted with fetch and the next tile is swapped in without a page load, keys R / S / 1 / 2 answer,
// and the results page gets a copy button. It never learns a tile's truth before the server has
// stored the answer: the truth only arrives in the reply to that answer.
(function () {
  "use strict";

  function setupGame(game) {
    var form = game.querySelector("[data-answer-form]");
    var img = game.querySelector("[data-tile]");
    var positionInput = form.querySelector("input[name=position]");
    var buttons = form.querySelectorAll("button[name=answer]");
    var errorBox = form.querySelector("[data-error]");
    var feedbackSlot = game.querySelector("[data-feedback]");
    var busy = false;

    function setBusy(value) {
      busy = value;
      buttons.forEach(function (b) { b.disabled = value; });
    }

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = !message;
    }

    function showFeedback(reply) {
      var p = document.createElement("p");
      p.className = "feedback " + (reply.correct ? "feedback-right" : "feedback-wrong");
      var strong = document.createElement("strong");
      strong.textContent = "Tile " + reply.position + ": " + (reply.correct ? "correct!" : "not quite.");
      p.appendChild(strong);
      var what = reply.truth === "real"
        ? " It was real tissue (" + reply.tissue + ")."
        : " It was synthetic, drawn by " + reply.generator + " (" + reply.tissue + ").";
      p.appendChild(document.createTextNode(what));
      feedbackSlot.replaceChildren(p);
    }

    function showProgress(reply) {
      game.querySelector("[data-score]").textContent = reply.score;
      var progress = game.querySelector("[data-progress]");
      progress.value = reply.position;
      progress.textContent = reply.position + " of " + reply.n;
    }

    function showTile(next) {
      img.classList.add("is-loading");
      var swap = function () {
        img.src = next.image;
        img.alt = next.alt;
        img.classList.remove("is-loading");
        positionInput.value = next.position;
        game.querySelector("[data-position]").textContent = next.position;
        document.title = document.title.replace(/^Tile \d+/, "Tile " + next.position);
        var sure = form.querySelector("input[name=confidence][value=sure]");
        if (sure) sure.checked = true;
        setBusy(false);
      };
      var loader = new Image();
      loader.src = next.image;
      // No preloading of later tiles: the server shows a round's tile only once it is current, so
      // that nothing (not even a file's size) can be learnt about a tile before its turn.
      (loader.decode ? loader.decode() : Promise.resolve()).then(swap, swap);
    }


    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!submitter || !window.fetch || !window.FormData) return; // let the browser post the form
      event.preventDefault();
      if (busy) return;
      setBusy(true);
      showError("");
      var data = new FormData(form);
      data.set("answer", submitter.value);
      fetch(form.action, {
        // URL-encoded, not multipart: the cheapest body for the server to parse on the hot path.
        method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
        headers: { "Accept": "application/json" },
      }).then(function (response) {
        // A refusal from Django itself (CSRF, a proxy error) is HTML, not JSON: say so plainly.
        return response.json().catch(function () {
          return { error: "The server said no (" + response.status + "). Reloading the page usually helps." };
        }).then(function (reply) { return { ok: response.ok, reply: reply }; });
      }).then(function (result) {
        var reply = result.reply;
        if (!result.ok) {
          showError(reply.error || "Something went wrong; please try again.");
          setBusy(false);
          return;
        }
        showFeedback(reply);
        showProgress(reply);
        if (reply.results) {
          window.setTimeout(function () { window.location.assign(reply.results); }, 700);
        } else {
          showTile(reply.next);
        }
      }).catch(function () {
        showError("The connection hiccupped. Your answer may not have been saved: please try again.");
        setBusy(false);
      });
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
      var target = event.target;
      var typing = target && (target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName) ||
        (target.tagName === "INPUT" && !/^(radio|checkbox|button|submit|hidden)$/.test(target.type)));
      if (typing) return;
      var key = event.key.toLowerCase();
      if (key === "r" || key === "s") {
        var button = form.querySelector("button[data-key=" + key + "]");
        if (button && !button.disabled) { event.preventDefault(); button.click(); }
      } else if (key === "1" || key === "2") {
        var radio = form.querySelector("input[name=confidence][value=" + (key === "1" ? "sure" : "unsure") + "]");
        if (radio) { event.preventDefault(); radio.checked = true; }
      }
    });
  }

  function setupCopy(button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(function () {
        button.textContent = "Copied!";
        window.setTimeout(function () { button.textContent = "Copy link"; }, 1500);
      });
    });
  }

  var game = document.querySelector("[data-game]");
  if (game) setupGame(game);
  document.querySelectorAll("[data-copy]").forEach(setupCopy);
})();
