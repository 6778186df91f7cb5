"""Built-in plugin: the procedural `shapes` set, the generic `folder` layout and public-dataset loaders."""
