"""The model's fixed vocabularies: the actions (Phoenix's 19 heads, then the optional ones) and the surfaces.

These names are part of the wire contract (`engagement-events.action`, the engagement log) and of every
checkpoint, so their order never changes; new entries may only be appended. A reader built with a later
vocabulary therefore accepts every record written with an earlier one, and a bit of an action mask means
the same action forever.

The first 19 actions are the heads of every Phoenix checkpoint (the January 2026 publication). The actions
appended after them (from the 2026-10 publication) are optional heads keyed by name: a ranker whose
checkpoint lacks one predicts 0 for it, so its weight has no effect; the model's own inputs and outputs stay
the 19 (`PHOENIX_ACTIONS`), so every checkpoint keeps loading.
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
    # Appended with the 2026-10 publication (optional heads; see the module docstring).
    "not_dwelled",  # an impression the user scrolled past without dwelling
    "video_open",  # the user opened a video in the media viewer
    "open_link",  # the user opened the post's link
    "click_dwell_time",  # continuous: how long the user stayed on the post after clicking it
)
NUM_ACTIONS: Final = len(ACTIONS)
# The heads every Phoenix checkpoint has, in this order: the model's action inputs and outputs.
NUM_PHOENIX_ACTIONS: Final = 19
PHOENIX_ACTIONS: Final[tuple[str, ...]] = ACTIONS[:NUM_PHOENIX_ACTIONS]
ACTION_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(ACTIONS)}
NEGATIVE_ACTIONS: Final[frozenset[str]] = frozenset(
    {"not_interested", "block_author", "mute_author", "report"}
)
# Actions whose weight must not be positive: the explicit negatives and the implicit one (scrolling past).
NEGATIVE_WEIGHT_ACTIONS: Final[frozenset[str]] = NEGATIVE_ACTIONS | {"not_dwelled"}

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
    """Multi-hot as an int (bit i = ACTIONS[i], at most 32 bits); unknown names raise KeyError."""
    mask = 0
    for name in names:
        mask |= 1 << ACTION_INDEX[name]
    return mask


def mask_to_actions(mask: int) -> list[str]:
    return [name for i, name in enumerate(ACTIONS) if mask >> i & 1]


assert NUM_ACTIONS <= 32, "action masks are stored as uint32 (stores.action_sequences)"
