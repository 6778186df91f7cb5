"""Built-in plugin: segmentation metrics, per image and pooled over a split.

``overlap`` has the confusion-count metrics (``dice``, ``iou``, ``accuracy``, ``precision``, ``recall``) and
``surface`` the boundary-distance metrics in pixels (``hd95``, ``assd``, ``nsd``); ``base`` states the rules they
share (background, ``ignore_index``, column names, NaN for undefined values); ``plugin`` registers them.
"""
