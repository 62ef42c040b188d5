from behaviorlab.compress.select import select_representative
from behaviorlab.profiles.episodes import Episode, Event


def episode(user: str, actions: str) -> Episode:
    return Episode(user, 0, tuple(Event(a) for a in actions))


def test_near_duplicates_are_skipped_and_coverage_is_kept():
    pool = [episode("a", "xyxyxy"), episode("b", "xyxyxy"), episode("c", "xyxyxx"), episode("d", "pqrpqr"),
            episode("e", "stustu")]
    selection = select_representative(pool, k=5, max_similarity=0.9)
    users = [pool[i].user for i in selection.chosen]
    # a, b and c are near duplicates: one is kept (c, which also has the x>x transition)
    assert len({"a", "b", "c"} & set(users)) == 1 and "c" in users
    assert {"d", "e"} <= set(users)  # the distinct behaviors are all kept
    assert selection.redundant == 2 and selection.feature_coverage == 1.0


def test_the_first_choice_is_the_most_informative_and_k_bounds_the_selection():
    pool = [episode("rare", "zz"), episode("rich", "abcdef"), episode("mid", "abc")]
    selection = select_representative(pool, k=1)
    assert [pool[i].user for i in selection.chosen] == ["rich"]
    assert select_representative([], k=3).chosen == ()
