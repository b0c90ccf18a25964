"""The aliases polled from a real (embedded) registry: before the first registration a look
asks whether the model exists, once, and reads no alias; from the first version on, the aliases
are read directly."""

from recsys_service.live_models import LiveModels, registered_model_exists, resolve_alias
from recsys_service.settings import ServiceSettings


def test_before_the_first_registration_a_look_reads_no_alias(store, model_name, data, fit, publish):
    asked: list[str] = []
    read: list[tuple[str, str]] = []

    def exists(name: str) -> bool | None:
        asked.append(name)
        return registered_model_exists(name)

    def resolve(name: str, alias: str):
        read.append((name, alias))
        return resolve_alias(name, alias)

    outcomes: list[tuple[str, str]] = []
    live = LiveModels(
        ServiceSettings(registered_model=model_name),
        resolve=resolve,
        exists=exists,
        on_reload=lambda role, outcome, served: outcomes.append((role, outcome)),
    )
    for _ in range(3):
        live.refresh()
    assert asked == [model_name] * 3 and read == []  # one question per look, no alias read
    assert outcomes == [("ranking", "no_version"), ("rating", "no_version")] * 3
    problem = live.status("ranking").problem
    assert problem is not None and "has no version with alias 'champion-ranking' yet" in problem

    publish(fit("sgd-mf", data, epochs=2, factors=4), store, model_name)
    asked.clear()
    outcomes.clear()
    live.refresh()
    live.refresh()
    # found once: from then on only the aliases are read
    assert asked == [model_name]
    assert [role for _, role in read] == ["champion-ranking", "champion-rating"] * 2
    assert outcomes[:2] == [("ranking", "loaded"), ("rating", "loaded")]
    assert live.served("ranking").version == "1"


def test_whether_a_model_exists_is_one_search_and_odd_names_are_left_to_the_alias_reads(
    store, model_name, data, fit, publish
):
    assert registered_model_exists(model_name) is False
    publish(fit("sgd-mf", data, epochs=2, factors=4), store, model_name)
    assert registered_model_exists(model_name) is True
    assert registered_model_exists(f"{model_name}-other") is False  # the name, not a prefix
    assert registered_model_exists("it's") is None  # no filter string can hold it


def test_an_injected_resolver_is_asked_directly():
    """A resolver of the caller's (tests, another registry) is asked about every alias: the
    existence question is the default resolver's."""
    read = []
    live = LiveModels(
        ServiceSettings(registered_model="anything"),
        resolve=lambda name, alias: read.append(alias),
    )
    live.refresh()
    assert read == ["champion-ranking", "champion-rating"]
