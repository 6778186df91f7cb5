"""Built-in plugin: the procedural `shapes` set, the generic `folder` layout, public-dataset loaders and the
``ZOO_DATA`` data directory.

Modules: ``shapes`` (procedural), ``folder`` (generic layout and shared item assembly), ``public`` (isbi2012,
drive, camvid, dsb2018, voc2012, oxford-pets), ``datadir`` (``$ZOO_DATA/<name>/``), ``plugin`` (hooks).
"""
