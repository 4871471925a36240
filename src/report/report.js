// Filters, lazy waveform drawing, and seeking the player from the transcript and waveform.
(() => {
  const L = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const css = (n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
  const form = document.querySelector("form.filters");
  const calls = [...document.querySelectorAll("details.call")];
  const filter = () => {
    const f = Object.fromEntries(new FormData(form));
    let shown = 0;
    for (const c of calls) {
      const ok = (!f.test || c.dataset.test === f.test) && (!f.condition || c.dataset.condition === f.condition) && (!f.outcome || c.dataset.outcome === f.outcome);
      c.hidden = !ok;
      shown += ok;
    }
    form.querySelector("output").textContent = `${shown} of ${calls.length} calls`;
  };
  form.addEventListener("change", filter);
  filter();

  const draw = (c) => {
    const canvas = c.querySelector("canvas");
    if (!canvas || !c.dataset.wave) return;
    const w = JSON.parse(c.dataset.wave), tl = JSON.parse(c.dataset.tl || "{}");
    const W = (canvas.width = canvas.clientWidth * devicePixelRatio), H = (canvas.height = 160 * devicePixelRatio);
    const g = canvas.getContext("2d"), s = devicePixelRatio;
    const dur = tl.d || Math.max(w.c.length, w.a.length) * w.ms, x = (ms) => (ms / dur) * W;
    const lane = (peaks, mid, half, color) => {
      g.fillStyle = color;
      for (let i = 0; i < peaks.length; i++) {
        const v = L.indexOf(peaks[i]) / 63, h = Math.max(0.5 * s, v * half);
        g.fillRect(x(i * w.ms), mid - h, Math.max(1, x(w.ms)), 2 * h);
      }
    };
    lane(w.c, 30 * s, 26 * s, css("--caller"));
    lane(w.a, 88 * s, 26 * s, css("--agent"));
    const spans = (list, y, color) => { g.fillStyle = color; for (const [a, b] of list || []) g.fillRect(x(a), y * s, Math.max(2, x(b) - x(a)), 5 * s); };
    const ticks = (list, y, color) => { g.fillStyle = color; for (const t of list || []) g.fillRect(x(t) - s, y * s, 2 * s, 9 * s); };
    spans(tl.caller, 122, css("--caller"));
    spans(tl.agent, 122, css("--agent"));
    spans(tl.latency, 130, "#bf8700");
    spans(tl.drop, 130, "#fb8500");
    ticks(tl.burst, 138, "#6639ba");
    ticks(tl.barge, 138, "#1f2328");
    ticks(tl.clear, 138, "#57606a");
    ticks(tl.lost, 138, "#8c959f");
    spans(tl.answer, 151, "#1a7f37");
    spans(tl.late, 151, "#cf222e");
    g.fillStyle = css("--mute");
    g.font = `${10 * s}px sans-serif`;
    g.fillText("caller", 4 * s, 12 * s);
    g.fillText("agent", 4 * s, 70 * s);
    canvas.after(document.getElementById("legend").content.cloneNode(true));
    canvas.onclick = (e) => seek(c, ((e.offsetX * s) / W) * dur / 1000);
  };
  const seek = (c, t) => {
    const a = c.querySelector("audio");
    if (!a) return;
    a.currentTime = t;
    a.play().catch(() => {});
  };
  for (const c of calls) {
    c.addEventListener("toggle", () => c.open && !c.drawn && (c.drawn = true, draw(c)));
    c.addEventListener("click", (e) => {
      const li = e.target.closest("li[data-t]");
      if (!li) return;
      c.querySelectorAll("li.playing").forEach((l) => l.classList.remove("playing"));
      li.classList.add("playing");
      seek(c, parseFloat(li.dataset.t));
    });
  }
  // Calls open from the start (an `open` attribute) are drawn now: their toggle came first.
  for (const c of calls) if (c.open && !c.drawn) (c.drawn = true, draw(c));
  // A link to #call-N opens that call.
  const target = location.hash && document.querySelector(location.hash);
  if (target && target.tagName === "DETAILS") {
    target.open = true;
    target.scrollIntoView({ block: "nearest" });
  }
})();
