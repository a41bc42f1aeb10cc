"""Topic names and the words posts are written with.

Each topic owns its words (no word is shared between topics), so a keyword mute of one topic's word hides
exactly that topic's posts whose text carries the word.
"""

from functools import lru_cache

_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sports", ("match", "goal", "league", "coach", "stadium", "season", "transfer", "playoffs")),
    ("music", ("album", "concert", "guitar", "melody", "vinyl", "festival", "chorus", "remix")),
    ("politics", ("election", "senate", "policy", "ballot", "campaign", "debate", "minister", "vote")),
    ("tech", ("startup", "compiler", "gpu", "database", "kernel", "api", "laptop", "opensource")),
    ("gaming", ("console", "speedrun", "quest", "esports", "controller", "raid", "patch", "lootbox")),
    ("food", ("recipe", "pasta", "bakery", "ramen", "spices", "brunch", "sourdough", "tacos")),
    ("travel", ("airport", "passport", "hostel", "itinerary", "beach", "roadtrip", "visa", "backpack")),
    ("science", ("telescope", "molecule", "fossil", "quantum", "genome", "neutron", "lab", "experiment")),
    ("movies", ("trailer", "director", "sequel", "cinema", "screenplay", "oscars", "premiere", "boxoffice")),
    ("fashion", ("runway", "sneakers", "denim", "couture", "outfit", "tailoring", "fabric", "streetwear")),
    ("finance", ("stocks", "dividend", "inflation", "bonds", "earnings", "portfolio", "crypto", "ipo")),
    ("health", ("workout", "sleep", "nutrition", "cardio", "yoga", "vaccine", "therapy", "marathon")),
    ("art", ("painting", "gallery", "sculpture", "sketch", "canvas", "mural", "watercolor", "exhibit")),
    ("books", ("novel", "chapter", "author", "library", "poetry", "memoir", "bookclub", "paperback")),
    ("pets", ("puppy", "kitten", "leash", "aquarium", "hamster", "vet", "adoption", "parrot")),
    ("weather", ("storm", "forecast", "heatwave", "snowfall", "humidity", "tornado", "drizzle", "sunrise")),
)
WORDS_PER_TOPIC = 8


@lru_cache(maxsize=8)
def topic_words(num_topics: int) -> tuple[tuple[str, ...], ...]:
    """`topic_words(T)[t]` are the WORDS_PER_TOPIC words of topic t."""
    return tuple(
        _TOPICS[t][1] if t < len(_TOPICS) else tuple(f"t{t}w{i}" for i in range(WORDS_PER_TOPIC))
        for t in range(num_topics)
    )
