"""The training flow: collect -> validate -> features -> train -> evaluate -> gate -> refit ->
promote.

A run competes for one or two serving roles (``ranking``: top-k lists, ``rating``: rating
predictions), each judged by its own gate and held by its own champion alias
(``champion-ranking``, ``champion-rating``). With ``refit_full`` the version that is served is
refit on every row of the split once a gate has passed; the judged model is kept beside it.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.states import Completed, State
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsys_core.data.config import DataConfig
from recsys_core.evaluation.gate import ROLES, GateDecision, RoleGates, competing_roles
from recsys_core.evaluation.metrics import METRICS_VERSION
from recsys_core.exceptions import DataValidationError, StalePromotionError, TrainingError
from recsys_core.features.prepare import Features
from recsys_core.features.splits import SplitConfig
from recsys_core.models.spec import DEFAULT_MODEL, ModelSpec
from recsys_core.privacy.pseudonyms import PSEUDONYMIZED_TAG
from recsys_core.redaction import redact
from recsys_core.settings import get_settings
from recsys_core.spark.engine import EvaluationEngine, resolve_engine
from recsys_core.tracking import mlflow_run, registry
from recsys_core.validation.rules import ValidationRules
from tasks import run_context
from tasks.collect import collect_snapshot
from tasks.drift import check_drift
from tasks.evaluate import Scores, evaluate_models
from tasks.features import build_features
from tasks.feedback import log_click_through
from tasks.forget import log_forget_audit
from tasks.gate import baselines_needed, gate, mark_version, promote, roles_headline, roles_markdown
from tasks.tracking import end_run, log_and_register, log_inputs, log_to_run, start_run
from tasks.train import Refit, refit_model, train_model
from tasks.validate import validate_snapshot

_SCALE = ("rating_min", "rating_max")


class RunInputs(BaseModel):
    """The sections a training run and a study share (the Prefect UI shows them as a form).

    Each is the library's own configuration, with its one default: ``data`` (what to collect),
    ``validation`` (what valid data looks like), ``split`` and ``model`` (name and
    hyperparameters, validated against the model's configuration when the parameters are
    built). The rating scale is set once, in ``data``; ``validation`` follows it.
    """

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(default_factory=DataConfig, description="what to collect, and how")
    validation: ValidationRules = Field(
        default_factory=ValidationRules,
        description="what valid data looks like (its rating scale follows data)",
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="the train/test split")
    model: ModelSpec = Field(
        default_factory=ModelSpec, description="the model to train and its hyperparameters"
    )

    @model_validator(mode="before")
    @classmethod
    def _one_rating_scale(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        data = values.get("data")
        data = data.model_dump() if isinstance(data, DataConfig) else dict(data or {})
        scale = {f: data.get(f, DataConfig.model_fields[f].default) for f in _SCALE}
        rules = values.get("validation")
        if isinstance(rules, ValidationRules):
            explicit = {f: getattr(rules, f) for f in _SCALE if f in rules.model_fields_set}
            rules = {**rules.model_dump(exclude_unset=True)}
        else:
            rules = dict(rules or {})
            explicit = {f: rules[f] for f in _SCALE if f in rules}
        differing = {f: v for f, v in explicit.items() if float(v) != float(scale[f])}
        if differing:
            raise ValueError(
                f"validation sets {differing} but data sets {scale}: set the rating scale once, "
                "in data.rating_min and data.rating_max (validation follows it)"
            )
        return {**values, "validation": {**rules, **scale}}


class TrainingParams(RunInputs):
    """Parameters of one training run: what to collect and validate, the split and the model
    (the sections a study shares), the gate a challenger must pass, and how the run competes,
    is judged and is recorded.
    """

    # the shared sections are RunInputs'; the class docstring is the Prefect form's text

    gate: RoleGates = Field(
        default_factory=RoleGates,
        description="what the challenger must achieve, per role, to become that role's champion",
    )
    roles: Literal["auto"] | list[Literal["ranking", "rating"]] = Field(
        "auto",
        description="serving roles the run competes for; auto: ranking and rating for "
        "a rating model, ranking for a ranking-only model",
    )
    refit_full: bool = Field(
        True,
        description="once a gate passed, refit on every row of the split (train and "
        "test) and serve that refit; the judged model is kept as "
        "evaluated_state",
    )
    k: int = Field(10, ge=1, le=1000, description="length of the top-k lists")
    relevance_threshold: float | None = Field(
        None, description="ratings >= this count as relevant in ranking metrics (empty: all)"
    )
    evaluation_engine: EvaluationEngine = Field(
        "auto",
        description="what scores the challenger on the test split: spark (from the "
        "split's Parquet files; factor models), local, or auto (spark for "
        "the Spark models, local otherwise); baselines and champions are "
        "scored locally",
    )
    registered_model: str = Field(
        "recsys", min_length=1, description="MLflow registered model name"
    )
    experiment: str = Field("recsys-training", min_length=1, description="MLflow experiment")
    data_dir: str = Field(".recsys/data", description="folder of snapshots and run files")
    trigger: Literal["auto", "schedule", "manual"] = Field(
        "auto", description="auto: 'schedule' for scheduled runs, 'manual' otherwise"
    )

    @field_validator("k", mode="before")
    @classmethod
    def _positive_k(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"k must be a positive integer, got {value}")
        return value

    @model_validator(mode="after")
    def _roles_the_model_can_fill(self) -> TrainingParams:
        self.competing_roles()  # a ConfigError (a ValueError) names what the model can fill
        resolve_engine(self.evaluation_engine, self.model.name)  # before any training
        return self

    def competing_roles(self) -> list[str]:
        """The roles this run competes for (``roles`` resolved against the model)."""
        return competing_roles(
            self.roles, fillable=self.model.model_class.capabilities.roles, model=self.model.name
        )

    def logged(self) -> dict[str, Any]:
        """The parameters as logged to MLflow: ``data.source``, ``model.factors``, ``split.*``..."""
        dump = self.model_dump(mode="json")
        dump["model"] = self.model.flat()
        dump["data"]["source"] = redact(self.data.source)
        return dump


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters.get("params")
    if isinstance(params, TrainingParams):
        return f"train-{params.model.name}"
    model = ((params or {}).get("model") or {}) if isinstance(params, dict) else {}
    return f"train-{model.get('name', DEFAULT_MODEL)}"


@flow(name="training", flow_run_name=_run_name, log_prints=True)
def training_flow(params: TrainingParams = TrainingParams()) -> Any:
    """Train, evaluate and gate one model for each role it competes for; promote it to each
    role's champion alias whose gate passes.

    ``params`` is one pydantic model so that the Prefect UI shows every setting, with its
    default and description, as a form; deployments pass ``{"params": {...}}``. Returns the
    outcome (a dict, with a ``roles`` entry per role); a run that promoted nothing ends in a
    ``Completed`` state named ``Refused`` that carries the same outcome.
    """
    tracking_uri = mlflow_run.configure()
    trigger = run_context.trigger(params.trigger)
    run_id, run_url = start_run(
        params.experiment,
        f"{params.model.name}-{uuid.uuid4().hex[:6]}",
        {
            "recsys.trigger": trigger,
            "recsys.model": params.model.name,
            "recsys.git_commit": mlflow_run.git_commit(),
            "recsys.metrics_version": METRICS_VERSION,
            "recsys.flow": "training",
            **run_context.flow_run_tags(),
        },
    )
    workdir = Path(params.data_dir) / "runs" / run_id
    outcome: dict[str, Any] = {
        "run_id": run_id,
        "run_url": run_url,
        "tracking_uri": redact(tracking_uri),
        "flow_run_url": run_context.flow_run_url(),
    }
    status, verdict = "FAILED", "failed"
    try:
        log_forget_audit(run_id)  # the forget requests since the previous run, ids hashed
        log_click_through(run_id, params.registered_model)  # when RECSYS_EVENTS_URL is set
        feats, digest = _data(params, run_id, run_url, workdir)
        model_dir, history = train_model(feats, params.model, str(workdir))
        roles = params.competing_roles()
        rates = params.model.predicts_ratings
        scores = evaluate_models(
            model_dir,
            feats,
            k=params.k,
            relevance_threshold=params.relevance_threshold,
            registered_model=params.registered_model,
            baselines=baselines_needed(params.gate, roles, rates, params.split.strategy),
            champion_aliases={r: registry.alias_of(r) for r in roles},
            engine=params.evaluation_engine,
            released_fits=2 if params.refit_full else 1,
        )
        decisions = gate(
            scores,
            gates=params.gate,
            roles=roles,
            k=params.k,
            predicts_ratings=rates,
            run_id=run_id,
            run_url=run_url,
            split=params.split.strategy,
        )
        passed = [r for r, d in decisions.items() if d.passed]
        _log_results(
            run_id,
            scores,
            decisions,
            history,
            feats,
            {
                "recsys.refit": (
                    "pending"
                    if passed and params.refit_full
                    else "off"
                    if not params.refit_full
                    else "none: no gate passed"
                )
            },
        )
        evidence = {
            "run_id": run_id,
            "data_digest": digest,
            "trigger": trigger,
            "flow_run_id": str(run_context.flow_run_tags()["prefect.flow_run_id"]),
            "model": params.model.name,
            **({PSEUDONYMIZED_TAG: "true"} if params.data.pseudonymize_users else {}),
        }
        description = roles_markdown(decisions, _prefect_link())
        refit = None
        if passed and params.refit_full:
            refit = _refit(params, feats, run_id, model_dir, evidence, decisions, description)
        ref = log_and_register(
            run_id,
            refit.model_dir if refit else model_dir,
            params.registered_model,
            {
                **evidence,
                "status": "candidate",
                **_role_tags(decisions),
                **({"refit_data_digest": refit.data_digest} if refit else {}),
            },
            description=description,
            evaluated_dir=model_dir if refit else None,
        )
        outcome["version"] = ref.version
        results = _promote_roles(ref, decisions, evidence)  # the last change
        promoted = [r for r, v in results.items() if v == "promoted"]
        stale = [v for v in results.values() if isinstance(v, StalePromotionError)]
        mark_version(ref, {"status": "promoted" if promoted else "stale" if stale else "refused"})
        outcome.update(
            metrics=scores.challenger,
            baselines=scores.baselines,
            version=ref.version,
            promoted=bool(promoted),
            promoted_roles=promoted,
            data_digest=digest,
            gate=roles_headline(decisions),
            refit=None
            if refit is None
            else {
                "data_digest": refit.data_digest,
                "n_ratings": refit.n_ratings,
                "seconds": round(refit.seconds, 3),
            },
            roles=_role_outcomes(scores, decisions, results),
        )
        if stale:
            raise stale[0]
        status, verdict = "FINISHED", ("promoted-" + "+".join(promoted)) if promoted else "refused"
        if not promoted:
            return Completed(name="Refused", message=outcome["gate"][:500], data=outcome)
        return outcome
    except BaseException as exc:
        outcome["error"] = redact(str(exc))
        raise
    finally:
        _close(run_id, status, outcome.get("error"), workdir)
        run_context.rename_flow_run(f"train-{params.model.name}-{verdict}")


def _refit(
    params: TrainingParams,
    feats: Features,
    run_id: str,
    model_dir: str,
    evidence: dict[str, str],
    decisions: dict[str, GateDecision],
    description: str,
) -> Refit:
    """Refit on every row of the split. A refit that fails registers the judged model as a
    version without alias, tagged ``status=failed``, and fails the run: no champion moves."""
    try:
        refit = refit_model(feats, params.model, str(Path(model_dir).parent))
    except Exception as exc:
        error = redact(f"{type(exc).__name__}: {exc}")
        ref = log_and_register(
            run_id,
            model_dir,
            params.registered_model,
            {
                **evidence,
                "status": "failed",
                "refit_error": error[:4000],
                **_role_tags(decisions, passed="failed"),
            },
            description=description,
            alias=None,
        )
        log_to_run(run_id, tags={"recsys.refit": "failed"})
        raise TrainingError(
            f"the refit of {params.model.name!r} on all rows of the split failed ({error}); "
            f"version {ref.version} is marked failed and no champion moved. Re-run the "
            "training, or set refit_full=false to serve the evaluated model"
        ) from exc
    log_to_run(
        run_id,
        metrics={"refit/n_ratings": refit.n_ratings, "refit/seconds": refit.seconds},
        tags={"recsys.refit": "served", "recsys.refit.data_digest": refit.data_digest},
    )
    return refit


def _role_tags(decisions: dict[str, GateDecision], passed: str | None = None) -> dict[str, str]:
    """The version's role tags at registration: refused and not-competing roles (a passed role
    is tagged by its promotion, or ``passed`` when given)."""
    tags = {}
    for role in ROLES:
        d = decisions.get(role)
        state = "not-competing" if d is None else "refused" if not d.passed else passed
        if state:
            tags[registry.role_tag(registry.alias_of(role))] = state
    return tags


def _promote_roles(
    ref: registry.VersionRef, decisions: dict[str, GateDecision], evidence: dict[str, str]
) -> dict[str, Any]:
    """Promote every role whose gate passed: role -> ``promoted``, ``refused``,
    ``not-competing``, or the :class:`StalePromotionError` of a role whose champion moved
    meanwhile (the other roles are still promoted)."""
    results: dict[str, Any] = {r: "not-competing" for r in ROLES}
    for role, decision in decisions.items():
        if not decision.passed:
            results[role] = "refused"
            continue
        try:
            promote(ref, decision, evidence, role)
            results[role] = "promoted"
        except StalePromotionError as exc:
            results[role] = exc
    return results


def _role_outcomes(
    scores: Scores, decisions: dict[str, GateDecision], results: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        d = decisions.get(role)
        result = results[role]
        out[role] = {
            "alias": registry.alias_of(role),
            "verdict": "stale" if isinstance(result, Exception) else result,
        }
        if d is not None:
            out[role].update(
                primary_metric=d.primary_metric,
                champion_version=d.champion_version,
                champion=d.champion,
                baseline_name=d.baseline_name,
                baseline=d.baseline,
                gate=d.summary(),
                gate_reasons=d.reasons,
            )
    return out


def _data(
    params: TrainingParams, run_id: str, run_url: str | None, workdir: Path
) -> tuple[Features, str]:
    """Collect, validate and compare with the champion's data (stopping the run on failure or
    on drift past a stop limit), split and log the inputs."""
    snap = collect_snapshot(params.data, params.data_dir)
    checked = validate_snapshot(snap, params.validation, params.data_dir, run_id, run_url)
    log_to_run(
        run_id,
        tags={"recsys.validation": "passed" if checked.success else "failed"},
        artifacts=[(checked.quarantine_file, "validation")] if checked.quarantine_file else [],
        json_files={"validation/report.json": checked.report},
        text_files={"validation/report.md": checked.markdown},
    )
    if not checked.success:
        raise DataValidationError(
            f"data validation failed: {checked.summary}", report=checked.report
        )
    check_drift(
        checked.snapshot,
        params.validation.drift,
        params.data_dir,
        params.registered_model,
        run_id,
        run_url,
    )
    feats = build_features(checked.snapshot, params.split, str(workdir / "features"))
    log_inputs(run_id, params.logged(), checked.snapshot, feats.info)
    return feats, checked.snapshot.digest


def _log_results(
    run_id: str,
    scores: Scores,
    decisions: dict[str, GateDecision],
    history: list[dict[str, float]],
    feats: Features,
    extra_tags: dict[str, str],
) -> None:
    """Metrics namespaced (the challenger's own at the top; ``baseline/<name>/...``,
    ``champion/<role>/...``), the curve, plots and each role's verdict."""
    counts = {f"data/{c}": v for c, v in scores.counts.items() if c not in feats.info}
    baselines = {
        f"baseline/{b}/{m}": v for b, ms in scores.baselines.items() for m, v in ms.items()
    }
    champions = {
        f"champion/{r}/{m}": v
        for r, c in scores.champions.items()
        for m, v in (c.metrics or {}).items()
    }
    tags: dict[str, Any] = {
        "recsys.baselines": ",".join(scores.baselines),
        "recsys.gate": roles_headline(decisions, "passed"),
        **scores.tags,
        **extra_tags,
    }
    for role in ROLES:
        d = decisions.get(role)
        tags[f"recsys.gate.{role}"] = (
            "not-competing" if d is None else ("passed" if d.passed else "refused")
        )
        if d is None:
            continue
        tags[f"recsys.gate.{role}.primary_metric"] = d.primary_metric
        tags[f"recsys.gate.{role}.reasons"] = " | ".join(d.reasons)
        if d.champion_version:
            tags[f"recsys.champion_version.{role}"] = d.champion_version
        if d.champion_unavailable:
            tags[f"recsys.champion_unavailable.{role}"] = redact(d.champion_unavailable)
    log_to_run(
        run_id,
        metrics={**scores.challenger, **counts, **baselines, **champions},
        history=history,
        tags=tags,
        artifacts=[(p, "plots") for p in scores.plots],
        json_files={f"gate/{r}/decision.json": d.to_dict() for r, d in decisions.items()},
        text_files={f"gate/{r}/decision.md": d.to_markdown() for r, d in decisions.items()},
        description=roles_markdown(decisions, _prefect_link()),
    )


def _prefect_link() -> str | None:
    url = run_context.flow_run_url()
    return f"Prefect flow run: [{url.rsplit('/', 1)[-1]}]({url})" if url else None


def _close(run_id: str, status: str, error: str | None, workdir: Path) -> None:
    try:
        end_run(
            run_id,
            status,
            {"recsys.status": status.lower(), **({"recsys.error": error[:4000]} if error else {})},
        )
    except Exception:
        logging.getLogger(__name__).exception("could not close MLflow run %s", run_id)
    if not get_settings().training.keep_run_files:
        shutil.rmtree(workdir, ignore_errors=True)


def outcome_of(result: Any) -> dict[str, Any]:
    """The outcome dict of a flow call, whether the run was promoted or refused."""
    if isinstance(result, State):
        return result.result()
    return result


if __name__ == "__main__":
    training_flow()
