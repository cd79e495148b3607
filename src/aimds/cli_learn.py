"""``aimds learn`` (re-fit on shipped data + accepted feedback → new versioned model), ``aimds learn list``,
``aimds learn activate VERSION`` and ``aimds learn rollback [--to VERSION]``.

Every command takes ``--data-dir`` (the store ``aimds serve`` uses; versions go to ``<data-dir>/models/``)
and acts as an admin (``actor: cli``); a running service picks up the active version within about a second.
"""

from __future__ import annotations

from pathlib import Path

import click

from aimds.cli_service import _data_dir_opt, _echo_json, _store


@click.group(invoke_without_command=True)
@_data_dir_opt
@click.option("--datasets", type=click.Path(file_okay=False, path_type=Path),
              help="Folder with train.jsonl and dev.jsonl (default: AIMDS_DATASETS or ../shared/datasets).")
@click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0.0, 0.9),
              help="Share of the feedback held back for the before/after report.")
@click.option("--seed", default=13, show_default=True)
@click.option("--activate/--no-activate", default=False, show_default=True,
              help="Make the new version the active one (running services swap to it within ~1 s).")
@click.option("--quick", is_flag=True, help="Small seeded subset, no synthetic rows (tests and smoke runs only).")
@click.option("--feedback-weight", default=5, show_default=True, type=click.IntRange(1, 100),
              help="Times each feedback row is repeated in the training set.")
@click.option("--target-fpr", default=0.0095, show_default=True, help="False-positive budget on dev benign rows.")
@click.pass_context
def learn(ctx: click.Context, data_dir: Path | None, datasets: Path | None, holdout: float, seed: int,
          activate: bool, quick: bool, feedback_weight: int, target_fpr: float) -> None:
    """Re-fit the classifier on the shipped data plus accepted feedback, recalibrate thresholds on dev,
    write a new versioned model and print before/after metrics (dev and held-back feedback) as JSON."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"data_dir": data_dir}
        return
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise click.UsageError("learning needs scikit-learn: pip install 'aimds[train]'") from None
    from aimds.train.data import default_data_dir
    from aimds.train.learn import LearnConfig
    from aimds.train.learn import learn as run_learn

    cfg = LearnConfig(holdout=holdout, seed=seed, quick=quick, feedback_weight=feedback_weight, target_fpr=target_fpr)
    folder = datasets or default_data_dir()
    with _store(data_dir) as store:
        out = run_learn(store, folder, cfg, activate=activate, log=lambda m: click.echo(m, err=True))
    _echo_json({k: out[k] for k in ("version", "parent", "active", "files", "feedback", "metrics")})


def _dir(ctx: click.Context, data_dir: Path | None) -> Path | None:
    return data_dir or (ctx.obj or {}).get("data_dir")


@learn.command("list")
@_data_dir_opt
@click.pass_context
def learn_list(ctx: click.Context, data_dir: Path | None) -> None:
    """Model versions (JSON lines, oldest first; ``shipped`` is the packaged model)."""
    from aimds.store.models import ModelRegistry

    with _store(_dir(ctx, data_dir)) as store:
        for item in ModelRegistry(store).list():
            _echo_json(item)


@learn.command("activate")
@click.argument("version")
@_data_dir_opt
@click.pass_context
def learn_activate(ctx: click.Context, version: str, data_dir: Path | None) -> None:
    """Make VERSION (or ``shipped``) the active model (audited)."""
    from aimds.store.models import ModelRegistry

    with _store(_dir(ctx, data_dir)) as store:
        _echo_json(ModelRegistry(store).activate(version, "cli"))


@learn.command("rollback")
@click.option("--to", "to", help="Version to return to (default: the active version's parent).")
@_data_dir_opt
@click.pass_context
def learn_rollback(ctx: click.Context, to: str | None, data_dir: Path | None) -> None:
    """Return to the previous model (the active version's parent, or --to VERSION); audited."""
    from aimds.store.models import ModelRegistry

    with _store(_dir(ctx, data_dir)) as store:
        _echo_json(ModelRegistry(store).rollback("cli", to))


COMMANDS = (learn,)
