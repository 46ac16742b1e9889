"""The review channel: pulled feeds (JSON, RSS/Atom, App Store, Google Play) and pushed
reviews (a signed webhook), answered publicly. See docs/channels/reviews.md."""

from adapters.reviews.adapter import ReviewsAdapter
from adapters.reviews.config import ReviewsConfig

__all__ = ["ReviewsAdapter", "ReviewsConfig"]
