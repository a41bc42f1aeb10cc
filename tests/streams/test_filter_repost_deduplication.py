from streams.filters import RepostDeduplicationFilter
from tests.streams.foryou_fakes import candidate, ids, post, query


def repost(post_id: int, author_id: int, of: int, of_author: int = 99):
    return candidate(
        post_id, author_id, core=post(post_id, author_id, repost_of_post_id=of, repost_of_user_id=of_author)
    )


def test_several_reposts_of_one_original_keep_the_first():
    result = RepostDeduplicationFilter().filter(
        query(), [repost(1, 10, of=100), repost(2, 11, of=100), repost(3, 12, of=100)]
    )
    assert ids(result.kept) == [1]
    assert result.reasons == {"duplicate_repost": 2}


def test_original_before_its_repost_removes_the_repost():
    result = RepostDeduplicationFilter().filter(query(), [candidate(100, 99), repost(1, 10, of=100)])
    assert ids(result.kept) == [100]


def test_repost_before_its_original_removes_the_original():
    result = RepostDeduplicationFilter().filter(query(), [repost(1, 10, of=100), candidate(100, 99)])
    assert ids(result.kept) == [1]
    assert ids(result.removed) == [100]


def test_reposts_of_different_originals_and_plain_posts_are_kept():
    result = RepostDeduplicationFilter().filter(
        query(), [repost(1, 10, of=100), repost(2, 10, of=200), candidate(3, 10), candidate(4, 11)]
    )
    assert ids(result.kept) == [1, 2, 3, 4]
