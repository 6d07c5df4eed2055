"""Load testing (Locust) and the side-by-side benchmark.

* ``vitrine loadtest`` (:func:`vitrine.loadtest.runner.run_loadtest`): the Locust file
  :mod:`vitrine.loadtest.locustfile` run headless against a server (or the embedded one it
  starts), with a traffic mix, thresholds and Triton's own queue/compute metrics.
* ``vitrine bench`` (:func:`vitrine.loadtest.bench.run_bench`): onnxruntime in-process (the
  limit), Vitrine through the typed client, and a naive FastAPI + PyTorch peer, side by side.

Nothing here is imported by the client SDK; heavy dependencies load inside the functions.
"""
