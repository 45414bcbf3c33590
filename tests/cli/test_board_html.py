"""The committed boards' HTML as a browser lays it out: it fits a 1400 px window, and no header or
metric id breaks inside a word.

Headless Chromium loads each board's ``table.html`` with a probe script appended; the probe
writes its measurements into the DOM, which ``--dump-dom`` prints. No driver library is needed.
Skipped where Chromium is absent (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO
from rrg_bench.leaderboard.boards import BoardLayout, discover_root

BROWSER = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(BROWSER is None,
                                reason="Chromium is not installed (Debian: apt-get install -y chromium)")

VIEWPORT = 1400
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# For every element that may scroll sideways: does it? For every word of a header or a metric id
# (ids hold <wbr> break points, so each text node piece is a word): is it laid out on one line?
PROBE = """<script>(function(){
var scrolls=[],broken=[];
document.querySelectorAll('*').forEach(function(e){var s=getComputedStyle(e).overflowX;
  if((s==='auto'||s==='scroll')&&e.scrollWidth>e.clientWidth+1){
    scrolls.push((e.id||e.className||e.tagName)+' '+e.scrollWidth+'>'+e.clientWidth);}});
document.querySelectorAll('#board th, table.meta code').forEach(function(cell){
  var walk=document.createTreeWalker(cell,NodeFilter.SHOW_TEXT),node;
  while((node=walk.nextNode())){var re=/\\S+/g,m;
    while((m=re.exec(node.data))){var r=document.createRange();
      r.setStart(node,m.index);r.setEnd(node,m.index+m[0].length);var tops={};
      Array.prototype.forEach.call(r.getClientRects(),function(b){if(b.width>0){tops[Math.round(b.top)]=1;}});
      if(Object.keys(tops).length>1){broken.push(m[0]);}}}});
var out=document.createElement('pre');out.id='rrg-probe';
out.textContent=JSON.stringify({viewport:window.innerWidth,document:document.documentElement.scrollWidth,
  table:document.getElementById('board').getBoundingClientRect().right,scrolls:scrolls,broken:broken});
document.body.appendChild(out);})();</script>"""


def _boards() -> list[str]:
    try:
        return BoardLayout(discover_root(REPO)).board_names()
    except Exception:
        return []


def _measure(page: Path, profile: Path) -> dict:
    proc = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", f"--window-size={VIEWPORT},900",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="rrg-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no measurement from {BROWSER} (exit {proc.returncode}): {proc.stderr[-1500:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("board", _boards())
def test_committed_board_fits_a_1400px_window(board: str, tmp_path: Path):
    layout = BoardLayout(discover_root(REPO))
    source = layout.tables_dir(board, layout.load(board).version) / "table.html"
    page = tmp_path / "table.html"
    page.write_text(source.read_text(encoding="utf-8").replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    got = _measure(page, tmp_path / "profile")
    assert got["viewport"] == VIEWPORT
    assert got["document"] <= got["viewport"], got
    assert got["table"] <= got["viewport"], got
    assert got["scrolls"] == [], f"scrolls sideways at {VIEWPORT} px: {got['scrolls']}"
    assert got["broken"] == [], f"words broken across lines: {got['broken']}"
