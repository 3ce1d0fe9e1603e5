"""JavaScript probes run in Chromium over the DevTools protocol (Runtime.evaluate): measure the
laid-out page instead of trusting the CSS."""

# Every element: does it stick out of the viewport sideways (outside a box that scrolls sideways
# on purpose)? Is any text clipped (a box that hides overflow narrower than its content)? In each
# chart: does any label leave the drawing, or overlap another label?
LAYOUT = r"""(() => {
  const vw = document.documentElement.clientWidth;
  const out = {viewport: vw, page_width: document.documentElement.scrollWidth, overflow: [], clipped: [], spill: [],
               svg_clipped: [], svg_overlap: []};
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                       (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") +
                       " «" + (el.textContent || "").trim().slice(0, 40) + "»";
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("script, style, svg")) continue;
    const cs = getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden") continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const scroller = el.parentElement && el.parentElement.closest("div.wide");
    if (!scroller && (r.right > vw + 0.5 || r.left < -0.5)) out.overflow.push(name(el) + " " + Math.round(r.left) + ".." + Math.round(r.right));
    const hides = ["hidden", "clip"].includes(cs.overflowX) || cs.textOverflow === "ellipsis";
    if (hides && el.scrollWidth > el.clientWidth + 1) out.clipped.push(name(el));
    // a column spilling out of its table: a cell whose content is wider than the cell
    if ((el.tagName === "TD" || el.tagName === "TH") && el.scrollWidth > el.clientWidth + 1) out.spill.push(name(el));
  }
  for (const w of document.querySelectorAll("div.wide")) {
    const r = w.getBoundingClientRect();
    if (r.right > vw + 0.5 || r.left < -0.5) out.overflow.push("scroll box " + name(w));
  }
  for (const svg of document.querySelectorAll("svg")) {
    const vb = svg.viewBox.baseVal;
    const boxes = [];
    for (const t of svg.querySelectorAll("text")) {
      const b = t.getBBox();
      if (b.width === 0) continue;
      if (b.x < vb.x - 0.5 || b.x + b.width > vb.x + vb.width + 0.5 || b.y < vb.y - 0.5 || b.y + b.height > vb.y + vb.height + 0.5)
        out.svg_clipped.push(t.textContent + " [" + [b.x, b.y, b.width, b.height].map(Math.round) + "]");
      boxes.push([t.textContent, b]);
    }
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [ta, a] = boxes[i], [tb, b] = boxes[j];
      const ox = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
      const oy = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
      if (ox > 1 && oy > 1) out.svg_overlap.push(ta + " / " + tb);
    }
    // the as-of line must not run through a label
    for (const line of svg.querySelectorAll("line.asof")) {
      const x = line.x1.baseVal.value, y1 = line.y1.baseVal.value, y2 = line.y2.baseVal.value;
      for (const [t, b] of boxes) {
        if (t.startsWith("as of")) continue;
        if (b.x + 1 < x && x < b.x + b.width - 1 && b.y < Math.max(y1, y2) && b.y + b.height > Math.min(y1, y2))
          out.svg_overlap.push("as-of line / " + t);
      }
    }
  }
  return out;
})()"""

# With print media emulated: where the headline, the cards and the key table end (CSS px from
# the top), and whether each table's header cells line up with the cells below them.
PRINT = r"""(() => {
  const bottom = (sel) => { const e = document.querySelector(sel); return e ? e.getBoundingClientRect().bottom + window.scrollY : null; };
  const misaligned = [];
  for (const t of document.querySelectorAll("table")) {
    const head = t.tHead && t.tHead.rows[0], row = t.tBodies[0] && t.tBodies[0].rows[0];
    if (!head || !row || head.cells.length !== row.cells.length) continue;
    for (let i = 0; i < head.cells.length; i++) {
      const a = head.cells[i].getBoundingClientRect(), b = row.cells[i].getBoundingClientRect();
      if (Math.abs(a.left - b.left) > 1 || Math.abs(a.right - b.right) > 1) { misaligned.push(head.cells[i].textContent.trim()); }
    }
  }
  const vw = document.documentElement.clientWidth, wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > vw + 0.5 && !el.closest("svg")) wide.push(el.tagName.toLowerCase() + " «" + (el.textContent || "").trim().slice(0, 30) + "» " + Math.round(r.right));
  }
  const key = document.querySelector("table[data-key]");
  return {h1: bottom("h1"), cards: bottom(".cards"), key_table: bottom("table[data-key]"),
          key_table_top: key ? key.getBoundingClientRect().top + window.scrollY : null,
          width: document.documentElement.scrollWidth, viewport: vw, wide: wide.slice(0, 8), misaligned};
})()"""
