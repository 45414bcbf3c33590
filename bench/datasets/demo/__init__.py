"""``demo``: a small synthetic chest X-ray dataset written by rrg-bench and shipped in the wheel,
so the first ``bench run`` needs no download and no data-use agreement (``dataset``); the
report templates and the builder that regenerates it (``build``); the image drawer
(``findings``, ``drawing``), which also draws stand-in images at a real dataset's paths."""
