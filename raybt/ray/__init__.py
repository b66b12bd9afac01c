"""Everything that talks to Ray, and the only package of raybt that imports ``ray``.

* :mod:`raybt.ray.runtime`: start or join Ray (embedded local Ray by
  default), the dashboard's address, one-CPU tasks;
* :mod:`raybt.ray.actors`: the bars in the object store, the shard actors
  and the coordinator's actor (thin shells over :class:`raybt.asset.AssetGroup`
  and :class:`raybt.coordinator.Coordinator`), the group sets the coordinator
  drives;
* :mod:`raybt.ray.execute`: a portfolio run on Ray, the Ray side of
  :mod:`raybt.engine`;
* :mod:`raybt.ray.tasks`: a bounded map of tasks (optimise batches, sweep points);
* :mod:`raybt.ray.metrics`: the ``raybt_*`` gauges on Ray's metrics endpoint.

Everything else in raybt is plain Python and numba, testable without Ray; a
test checks that no other module imports ``ray``.
"""
