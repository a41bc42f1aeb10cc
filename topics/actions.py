"""The model's fixed vocabularies: the 19 Phoenix actions and the product surfaces.

These names are part of the wire contract (`engagement-events.action`, the engagement log) and of every
checkpoint, so their order never changes; new entries may only be appended.
"""

from typing import Final

ACTIONS: Final[tuple[str, ...]] = (
    "favorite",
    "reply",
    "repost",
    "photo_expand",
    "click",
    "profile_click",
    "vqv",
    "share",
    "share_via_dm",
    "share_via_copy_link",
    "dwell",
    "quote",
    "quoted_click",
    "follow_author",
    "not_interested",
    "block_author",
    "mute_author",
    "report",
    "dwell_time",
)
NUM_ACTIONS: Final = len(ACTIONS)
ACTION_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(ACTIONS)}
NEGATIVE_ACTIONS: Final[frozenset[str]] = frozenset(
    {"not_interested", "block_author", "mute_author", "report"}
)

# Product surfaces where an impression or engagement happened. Index 0 is padding; any surface string not
# listed maps to "other" so that producers may send new surfaces without breaking the model.
SURFACES: Final[tuple[str, ...]] = (
    "<pad>",
    "other",
    "home_for_you",
    "home_following",
    "search",
    "profile",
    "notifications",
    "conversation",
    "explore",
    "bookmarks",
    "lists",
    "communities",
    "spaces",
    "direct_messages",
    "media_viewer",
    "push",
)
NUM_SURFACES: Final = len(SURFACES)  # 16, the published product-surface vocabulary size
_SURFACE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(SURFACES)}


def surface_id(surface: str | None) -> int:
    """Index of a surface name; unknown or missing surfaces map to "other" (never to padding)."""
    if not surface:
        return _SURFACE_INDEX["other"]
    return _SURFACE_INDEX.get(surface, _SURFACE_INDEX["other"])


def actions_to_mask(names: list[str] | tuple[str, ...] | set[str]) -> int:
    """19-bit multi-hot as an int (bit i = ACTIONS[i]); unknown names raise KeyError."""
    mask = 0
    for name in names:
        mask |= 1 << ACTION_INDEX[name]
    return mask


def mask_to_actions(mask: int) -> list[str]:
    return [name for i, name in enumerate(ACTIONS) if mask >> i & 1]
