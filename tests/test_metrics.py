import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skshortcut import (
    GroupedData,
    group_accuracies,
    group_balanced_accuracy,
    make_group_scorer,
    worst_group_accuracy,
    worst_group_scorer,
)
from skshortcut.metrics import (
    AccuracyInterval,
    PseudoGroupScorer,
    make_pseudo_group_scorer,
    worst_class_accuracy,
    worst_class_scorer,
    worst_group_accuracy_ci,
)


def test_group_accuracies_values_and_counts():
    res = group_accuracies([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], groups=["a", "a", "b", "b", "c"])
    assert res.groups.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(res.accuracy, [0.5, 1.0, 0.0])
    assert res.count.tolist() == [2, 2, 1]
    assert res.worst == 0.0 and res.worst_group == "c"
    assert res.balanced == pytest.approx(0.5)
    assert "worst-group accuracy 0.000" in str(res)


def test_worst_and_balanced():
    y = np.array([0, 0, 0, 0, 1, 1])
    p = np.array([0, 0, 0, 1, 0, 1])
    g = np.array([0, 0, 0, 0, 1, 1])
    assert worst_group_accuracy(y, p, groups=g) == pytest.approx(0.5)
    assert group_balanced_accuracy(y, p, groups=g) == pytest.approx((0.75 + 0.5) / 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_true=[0, 1], y_pred=[0], groups=[0, 1]), "Inconsistent numbers of samples"),
        (dict(y_true=[], y_pred=[], groups=[]), "`y_true` is empty"),
        (dict(y_true=[0.0, np.nan], y_pred=[0, 1], groups=[0, 1]), "`y_true` contains NaN"),
        (dict(y_true=[0, 1], y_pred=[0, 1], groups=[0, np.nan]), "`groups` contains NaN"),
        (dict(y_true=[0, 1], y_pred=[[0, 1], [1, 0]], groups=[0, 1]), "`y_pred` must be one-dimensional"),
        (dict(y_true=["a", None], y_pred=["a", "b"], groups=[0, 1]), "`y_true` contains missing"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        worst_group_accuracy(kwargs["y_true"], kwargs["y_pred"], groups=kwargs["groups"])


labels = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 4)), min_size=1, max_size=60)


@settings(max_examples=80, deadline=None)
@given(labels)
def test_worst_le_balanced_le_max(rows):
    y, p, g = map(np.array, zip(*rows))
    res = group_accuracies(y, p, groups=g)
    assert res.worst <= res.balanced + 1e-12
    assert res.balanced <= res.accuracy.max() + 1e-12
    assert res.count.sum() == len(y)


@settings(max_examples=60, deadline=None)
@given(labels, st.randoms(use_true_random=False))
def test_invariant_to_renaming_groups_and_permuting_samples(rows, rnd):
    y, p, g = map(np.array, zip(*rows))
    names = {k: f"group-{rnd.random():.6f}-{k}" for k in np.unique(g)}
    g_renamed = np.array([names[k] for k in g])
    perm = np.array(rnd.sample(range(len(y)), len(y)))
    base = worst_group_accuracy(y, p, groups=g)
    assert worst_group_accuracy(y[perm], p[perm], groups=g_renamed[perm]) == pytest.approx(base)
    assert group_balanced_accuracy(y[perm], p[perm], groups=g_renamed[perm]) == pytest.approx(
        group_balanced_accuracy(y, p, groups=g)
    )


def _shortcut_features(n, rng):
    y = rng.randint(0, 2, n)
    s = np.where(rng.rand(n) < 0.9, y, 1 - y)
    X = np.c_[y + rng.normal(0, 1.0, n), s + rng.normal(0, 0.1, n)]
    return X, y, 2 * y + s


def test_worst_group_scorer_in_a_real_grid_search(routing):
    """GridSearchCV(est, grid, scoring=worst_group_scorer).fit(X, y, groups=g) tunes on worst-group accuracy."""
    rng = np.random.RandomState(0)
    X, y, g = _shortcut_features(600, rng)
    search = GridSearchCV(LogisticRegression(), {"C": [1e-3, 1.0]}, scoring=worst_group_scorer, cv=3)
    search.fit(X, y, groups=g)
    # every recorded score is the worst-group accuracy of that fold, recomputed here by hand
    from sklearn.model_selection import StratifiedKFold

    for k, (tr, te) in enumerate(StratifiedKFold(3).split(X, y)):
        for i, params in enumerate(search.cv_results_["params"]):
            est = LogisticRegression(**params).fit(X[tr], y[tr])
            expected = worst_group_accuracy(y[te], est.predict(X[te]), groups=g[te])
            assert search.cv_results_[f"split{k}_test_score"][i] == pytest.approx(expected)
    # and it is not plain accuracy: the shortcut makes the two differ
    assert search.cv_results_["mean_test_score"].max() < 0.9


def test_scorer_without_groups_explains(routing):
    rng = np.random.RandomState(0)
    X, y, _ = _shortcut_features(50, rng)
    est = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="needs `groups`"):
        worst_group_scorer(est, X, y)


def test_scorer_takes_groups_from_grouped_data():
    rng = np.random.RandomState(0)
    X, y, g = _shortcut_features(80, rng)
    est = LogisticRegression().fit(X, y)
    assert worst_group_scorer(est, GroupedData(X, g), y) == pytest.approx(
        worst_group_accuracy(y, est.predict(X), groups=g)
    )


def test_make_group_scorer_sign_and_errors():
    scorer = make_group_scorer(lambda y, p, groups: 0.25, greater_is_better=False)
    est = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert scorer(est, [[0.0], [1.0]], [0, 1], groups=[0, 1]) == -0.25
    with pytest.raises(TypeError, match="`metric` must be callable"):
        make_group_scorer("worst")


# --------------------------------------------------------------------------- label types
def test_numbers_against_strings_is_an_error_not_zero():
    # an int y_true and str y_pred can never match: the old code returned 0.0 silently
    with pytest.raises(ValueError, match=r"`y_true` holds numbers but `y_pred` holds strings"):
        worst_group_accuracy([0, 1, 1], ["0", "1", "1"], groups=[0, 0, 1])
    with pytest.raises(ValueError, match="no prediction can equal a true label"):
        group_accuracies(np.array(["a", "b"]), np.array([0, 1]), groups=[0, 1])


def test_ints_against_floats_and_bools_compare_as_numbers():
    assert worst_group_accuracy([0, 1, 1], [0.0, 1.0, 0.0], groups=[0, 1, 1]) == 0.5
    assert worst_group_accuracy([False, True], [0, 1], groups=[0, 1]) == 1.0


def test_mixed_type_labels_and_groups():
    # any hashable labels: ints and strings mixed, consistently in y_true and y_pred
    y = np.array([0, "cat", 0, "cat", 1, 1], dtype=object)
    p = np.array([0, "cat", 1, 0, 1, 1], dtype=object)
    g = np.array(["a", 0, "a", 0, 2.5, 2.5], dtype=object)
    res = group_accuracies(y, p, groups=g)
    assert res.as_dict() == {0: {"accuracy": 0.5, "count": 2}, 2.5: {"accuracy": 1.0, "count": 2},
                             "a": {"accuracy": 0.5, "count": 2}}
    assert res.groups.tolist() == [0, 2.5, "a"]  # numbers before strings
    assert worst_group_accuracy(y, p, groups=g) == 0.5
    assert worst_class_accuracy(y, p) == 0.5


def _two_column_cases():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    a = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    p = np.array([0, 1, 0, 1, 1, 1, 0, 0])
    return y, a, p


@pytest.mark.parametrize("as_table", [
    lambda y, a: np.c_[y, a],
    lambda y, a: list(zip(y.tolist(), a.tolist())),
    lambda y, a: np.c_[y.astype(object), np.where(a == 1, "red", "green").astype(object)],
])
def test_two_column_groups_are_one_group_per_row(as_table):
    y, a, p = _two_column_cases()
    table = as_table(y, a)
    res = group_accuracies(y, p, groups=table)
    # the same numbers as with the group ids 2 * y + a, one group per distinct row
    ref = group_accuracies(y, p, groups=2 * y + a)
    np.testing.assert_allclose(res.accuracy, ref.accuracy)
    assert res.count.tolist() == ref.count.tolist()
    assert all(isinstance(g, tuple) and len(g) == 2 for g in res.groups)
    assert worst_group_accuracy(y, p, groups=table) == ref.worst


class _Frame:
    """The part of a pandas DataFrame that numpy sees (pandas is not a dependency)."""

    def __init__(self, columns):
        self.columns = list(columns)
        self._data = columns

    def __array__(self, dtype=None, copy=None):
        return np.array(list(zip(*self._data.values())), dtype=dtype)

    def __len__(self):
        return len(next(iter(self._data.values())))


def test_two_column_data_frame_keeps_its_types():
    y, a, p = _two_column_cases()
    frame = _Frame({"label": y.tolist(), "colour": np.where(a == 1, "red", "green").tolist()})
    res = group_accuracies(y, p, groups=frame)
    assert res.groups.tolist() == [(0, "green"), (0, "red"), (1, "green"), (1, "red")]


def test_two_column_groups_reach_the_scorer(routing):
    rng = np.random.RandomState(0)
    X, y, g = _shortcut_features(300, rng)
    table = np.c_[y, g % 2]
    est = LogisticRegression().fit(X, y)
    assert worst_group_scorer(est, X, y, groups=table) == pytest.approx(
        worst_group_accuracy(y, est.predict(X), groups=g)
    )
    search = GridSearchCV(LogisticRegression(), {"C": [1e-3, 1.0]}, scoring=worst_group_scorer, cv=3)
    search.fit(X, y, groups=table)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_table_groups_with_missing_values_are_refused():
    with pytest.raises(ValueError, match="`groups` contains missing"):
        group_accuracies([0, 1], [0, 1], groups=np.array([[0, None], [1, 1]], dtype=object))


# --------------------------------------------------------------------------- worst-class
def test_worst_class_accuracy_is_the_worst_recall():
    from sklearn.metrics import recall_score

    rng = np.random.RandomState(0)
    y, p = rng.randint(0, 3, 200), rng.randint(0, 3, 200)
    assert worst_class_accuracy(y, p) == pytest.approx(recall_score(y, p, average=None).min())


def test_worst_class_scorer_in_a_grid_search_without_routing():
    rng = np.random.RandomState(0)
    y = np.r_[np.zeros(270, int), np.ones(30, int)]
    X = (y + rng.normal(0, 0.8, 300))[:, None]
    search = GridSearchCV(LogisticRegression(), {"class_weight": [None, "balanced"]}, scoring=worst_class_scorer,
                          cv=3).fit(X, y)
    # the balanced weights raise the minority class's recall, which the plain accuracy would not reward
    assert search.best_params_ == {"class_weight": "balanced"}
    from sklearn.model_selection import cross_val_score

    mean_acc = cross_val_score(LogisticRegression(), X, y, cv=3).mean()
    assert search.best_score_ < mean_acc


# --------------------------------------------------------------------------- pseudo-groups
def _spurious_clusters(n=400, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    s = np.where(rng.rand(n) < 0.9, y, 1 - y)
    X = np.c_[2 * y + rng.normal(0, 0.5, n), 2 * s + rng.normal(0, 0.5, n)]
    return X, y, 2 * y + s


def test_pseudo_group_scorer_scores_the_groupers_groups():
    from sklearn.cluster import KMeans

    X, y, g = _spurious_clusters()
    km = KMeans(4, n_init=10, random_state=0).fit(X)
    clf = LogisticRegression().fit(X, y)
    scorer = make_pseudo_group_scorer(km)
    assert scorer(clf, X, y) == pytest.approx(worst_group_accuracy(y, clf.predict(X), groups=km.predict(X)))
    crossed = make_pseudo_group_scorer(km, by_class=True)
    assert crossed(clf, X, y) == pytest.approx(
        worst_group_accuracy(y, clf.predict(X), groups=np.c_[y, km.predict(X)])
    )


def test_pseudo_group_scorer_ranks_like_true_groups_in_a_grid_search(routing):
    from sklearn.cluster import KMeans

    X, y, g = _spurious_clusters()
    grid = {"C": [1e-3, 1e-2, 1e-1, 1.0]}
    pseudo = GridSearchCV(LogisticRegression(), grid, cv=3,
                          scoring=make_pseudo_group_scorer(KMeans(4, n_init=10, random_state=0).fit(X))).fit(X, y)
    true = GridSearchCV(LogisticRegression(), grid, cv=3, scoring=worst_group_scorer).fit(X, y, groups=g)
    assert np.isfinite(pseudo.cv_results_["mean_test_score"]).all()
    # same order of the four configurations, hence the same choice
    np.testing.assert_array_equal(pseudo.cv_results_["rank_test_score"], true.cv_results_["rank_test_score"])
    assert pseudo.best_params_ == true.best_params_


class _DummyGrouper:
    """A grouper with the skshortcut contract: transform(X) -> GroupedData."""

    def __init__(self, classes):
        self.classes = classes

    def fit(self, X, y):
        self.classes_ = np.asarray(self.classes)
        return self

    def transform(self, X):
        return GroupedData(X, (np.asarray(X)[:, 1] > 1).astype(int))


def test_pseudo_group_scorer_takes_grouped_data_from_transform():
    X, y, g = _spurious_clusters()
    grouper = _DummyGrouper([0, 1]).fit(X, y)
    clf = LogisticRegression().fit(X, y)
    expected = worst_group_accuracy(y, clf.predict(X), groups=(X[:, 1] > 1).astype(int))
    assert PseudoGroupScorer(grouper)(clf, X, y) == pytest.approx(expected)
    # a GroupedData input is unpacked; its own groups are not used
    assert PseudoGroupScorer(grouper)(clf, GroupedData(X, g), y) == pytest.approx(expected)


def test_pseudo_group_scorer_bad_groupers():
    from sklearn.cluster import KMeans
    from sklearn.exceptions import NotFittedError

    X, y, _ = _spurious_clusters()
    with pytest.raises(NotFittedError, match="needs a fitted grouper"):
        make_pseudo_group_scorer(KMeans(4))
    with pytest.raises(NotFittedError, match="this _DummyGrouper is not fitted"):
        make_pseudo_group_scorer(_DummyGrouper([0, 1]))
    with pytest.raises(TypeError, match="must have transform"):
        make_pseudo_group_scorer(object())
    with pytest.raises(TypeError, match="`metric` must be callable"):
        make_pseudo_group_scorer(KMeans(2, n_init=1).fit(X), metric="worst")
    clf = LogisticRegression().fit(X, y)
    other = _DummyGrouper(["a", "b"]).fit(X, y)
    with pytest.raises(ValueError, match=r"grouper was fit on classes \['a', 'b'\] but the scored estimator"):
        PseudoGroupScorer(other)(clf, X, y)

    class _Bad(_DummyGrouper):
        def transform(self, X):
            return np.zeros(len(X))

    with pytest.raises(TypeError, match="must return a GroupedData"):
        PseudoGroupScorer(_Bad([0, 1]).fit(X, y))(clf, X, y)


def test_pseudo_group_scorer_clones_and_pickles():
    import pickle

    from sklearn.cluster import KMeans
    from sklearn.model_selection import cross_validate

    X, y, _ = _spurious_clusters(150)
    scorer = make_pseudo_group_scorer(KMeans(2, n_init=2, random_state=0).fit(X), greater_is_better=False)
    assert repr(scorer) == "make_pseudo_group_scorer(KMeans(...), metric=worst_group_accuracy, sign=-1)"
    again = pickle.loads(pickle.dumps(scorer))
    clf = LogisticRegression().fit(X, y)
    assert again(clf, X, y) == scorer(clf, X, y) <= 0
    scores = cross_validate(LogisticRegression(), X, y, cv=3, scoring={"pseudo": scorer, "class": worst_class_scorer})
    assert np.isfinite(scores["test_pseudo"]).all() and np.isfinite(scores["test_class"]).all()


# --------------------------------------------------------------------------- bootstrap intervals
def test_bootstrap_intervals_per_group_and_worst():
    y = np.r_[np.zeros(200, int), np.ones(40, int)]
    p = y.copy()
    p[200:210] = 0  # class 1: 30 of 40 right
    res = group_accuracies(y, p, groups=y, n_bootstrap=2000, confidence=0.9, random_state=0)
    assert res.n_bootstrap == 2000 and res.confidence == 0.9
    assert (res.ci_low[0], res.ci_high[0]) == (1.0, 1.0)
    # binomial standard error of 0.75 with n=40 is 0.068: a 90% interval about +-0.11
    assert res.ci_low[1] == pytest.approx(0.75 - 1.645 * 0.0685, abs=0.03)
    assert res.ci_high[1] == pytest.approx(0.75 + 1.645 * 0.0685, abs=0.03)
    ci = res.worst_ci
    assert isinstance(ci, AccuracyInterval) and ci.estimate == 0.75
    assert (ci.low, ci.high) == (res.ci_low[1], res.ci_high[1])
    assert ci == worst_group_accuracy_ci(y, p, groups=y, n_bootstrap=2000, confidence=0.9, random_state=0)
    assert "90% interval" in str(res) and f"worst-group accuracy {ci}" in str(res)
    assert res.as_dict()[1]["ci"] == [res.ci_low[1], res.ci_high[1]]


def test_worst_group_interval_is_not_biased_by_many_similar_groups():
    # 20 groups of 100 at accuracy 0.9: the replicated minimum lies below 0.9 almost always
    g = np.repeat(np.arange(20), 100)
    y = np.zeros(2000, int)
    p = np.where(np.arange(2000) % 100 < 90, 0, 1)
    ci = worst_group_accuracy_ci(y, p, groups=g, random_state=0)
    assert ci.low < 0.9 < ci.high


def test_no_interval_without_bootstrap():
    res = group_accuracies([0, 1], [0, 1], groups=[0, 1])
    assert res.ci_low is None
    with pytest.raises(ValueError, match="n_bootstrap=1000"):
        res.worst_ci


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_bootstrap=0), ValueError, "n_bootstrap == 0, must be >= 1"),
    (dict(n_bootstrap=10.5), TypeError, "n_bootstrap must be an instance of"),
    (dict(n_bootstrap=True), TypeError, "n_bootstrap must be an int"),
    (dict(n_bootstrap=10, confidence=95), ValueError, "confidence == 95, must be < 1"),
    (dict(n_bootstrap=10, confidence=0.0), ValueError, "confidence == 0.0, must be > 0"),
])
def test_bootstrap_parameters_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        group_accuracies([0, 1], [0, 1], groups=[0, 1], **kwargs)


rows_with_bootstrap = st.tuples(
    labels, st.integers(50, 300), st.floats(0.5, 0.99), st.integers(0, 2**31 - 1)
)


@settings(max_examples=60, deadline=None)
@given(rows_with_bootstrap)
def test_interval_contains_the_estimate_and_is_seeded(case):
    rows, n_bootstrap, confidence, seed = case
    y, p, g = map(np.array, zip(*rows))
    res = group_accuracies(y, p, groups=g, n_bootstrap=n_bootstrap, confidence=confidence, random_state=seed)
    # a group's resampled accuracy is k*/n with k* ~ Binomial(n, acc): its median is the accuracy, so with
    # 50 or more replicates the central interval misses it with probability below 2**-50
    assert np.all(res.ci_low <= res.accuracy + 1e-12) and np.all(res.accuracy <= res.ci_high + 1e-12)
    ci = res.worst_ci
    assert ci.low <= ci.estimate <= ci.high and 0 <= ci.low and ci.high <= 1
    assert ci.estimate == worst_group_accuracy(y, p, groups=g)
    again = group_accuracies(y, p, groups=g, n_bootstrap=n_bootstrap, confidence=confidence, random_state=seed)
    np.testing.assert_array_equal(again.ci_low, res.ci_low)
    np.testing.assert_array_equal(again.ci_high, res.ci_high)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4)), min_size=1, max_size=60), st.integers(0, 1000))
def test_all_correct_groups_have_degenerate_intervals(rows, seed):
    y, g = map(np.array, zip(*rows))
    res = group_accuracies(y, y, groups=g, n_bootstrap=100, random_state=seed)
    np.testing.assert_array_equal(res.ci_low, 1.0)
    np.testing.assert_array_equal(res.ci_high, 1.0)
    assert tuple(res.worst_ci) == (1.0, 1.0, 1.0, 0.95)


def test_bootstrap_resamples_within_groups_like_index_resampling():
    # drawing the correct count from Binomial(n_g, acc_g) is index resampling within the group:
    # compare the interval with one from explicit index resampling
    rng = np.random.RandomState(1)
    y = rng.randint(0, 2, 300)
    p = np.where(rng.rand(300) < 0.8, y, 1 - y)
    g = rng.randint(0, 3, 300)
    res = group_accuracies(y, p, groups=g, n_bootstrap=4000, random_state=0)
    for k in range(3):
        idx = np.flatnonzero(g == k)
        right = (y[idx] == p[idx]).astype(float)
        reps = [right[rng.randint(0, len(idx), len(idx))].mean() for _ in range(4000)]
        low, high = np.quantile(reps, [0.025, 0.975])
        assert res.ci_low[k] == pytest.approx(low, abs=0.02)
        assert res.ci_high[k] == pytest.approx(high, abs=0.02)
