"""The decode cache: splits that decode each item once and keep it in memory as uint8 while a budget allows.

Every split of a dataset shares one :class:`DecodeCache` (a byte budget); a :class:`CachedSplit` keeps the
decoded pairs it is allowed to and decodes the rest on every access.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from torch import Tensor
from torch.utils.data import Dataset

from zoo.errors import DatasetError

__all__ = ["DEFAULT_CACHE_MB", "CachedSplit", "DecodeCache"]

log = logging.getLogger(__name__)

DEFAULT_CACHE_MB = 2048


class DecodeCache:
    """A memory budget shared by the splits of one dataset: decoded items are kept while they fit.

    Args:
        budget_mb: megabytes of decoded uint8 pixels to keep; 0 disables caching.
    """

    def __init__(self, budget_mb: float = DEFAULT_CACHE_MB) -> None:
        if budget_mb < 0:
            raise DatasetError(f"cache_mb={budget_mb} must be >= 0")
        self.budget_bytes = int(budget_mb * 2**20)
        self.used_bytes = 0
        self.full = False

    def admit(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` if they fit the budget."""
        if self.used_bytes + nbytes > self.budget_bytes:
            if not self.full and self.budget_bytes:
                log.info("decode cache budget of %d MB is full; further items are decoded on every access",
                         self.budget_bytes // 2**20)
            self.full = True
            return False
        self.used_bytes += nbytes
        return True


Loader = Callable[[int], tuple[Tensor, Tensor]]


class CachedSplit(Dataset):
    """A split whose items come from ``load(i) -> (uint8 image (C,H,W), integer mask (H,W))``, decoded once.

    ``split[i]`` converts to the item contract (float32 in [0, 1], int64). :meth:`raw` gives the cached uint8
    pair, which :func:`zoo.data.make_loader` uses so that augmentation runs on uint8 (faster) before normalisation.

    Args:
        ids: item names, in order.
        load: decodes item ``i`` (and validates it, raising ``DatasetError`` naming the file).
        cache: the shared budget; ``None`` disables caching.
        ignore_index: the dataset's void label (used as the fill value when augmentation rotates a mask).
        describe: ``describe(i)`` names item ``i``'s files for error messages.
    """

    def __init__(self, ids: Sequence[str], load: Loader, *, cache: DecodeCache | None = None,
                 ignore_index: int | None = None, describe: Callable[[int], str] | None = None) -> None:
        self.ids = list(ids)
        self._load = load
        self._cache = cache
        self._items: dict[int, tuple[Tensor, Tensor]] = {}
        self.ignore_index = ignore_index
        self.describe = describe or (lambda i: self.ids[i])

    def __len__(self) -> int:
        return len(self.ids)

    def raw(self, index: int) -> tuple[Tensor, Tensor]:
        """Item ``index`` as decoded: uint8 image ``(C, H, W)`` and integer mask ``(H, W)``."""
        if index < 0:
            index += len(self.ids)
        item = self._items.get(index)
        if item is None:
            if not 0 <= index < len(self.ids):
                raise IndexError(f"index {index} out of range for a split of {len(self.ids)} items")
            item = self._load(index)
            if self._cache is not None and self._cache.admit(item[0].nbytes + item[1].nbytes):
                self._items[index] = item
        return item

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.raw(index)
        return image.float().div_(255.0), mask.long()

    @property
    def cached_items(self) -> int:
        """How many items are held in memory."""
        return len(self._items)
