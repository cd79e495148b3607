"""The ``aimds`` command line: scan, eval, bench, train, rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from aimds.errors import AIMDSError


def _guard(detectors: str | None, policy: str | None, data_dir: str | None = None) -> Any:
    from aimds.config import Settings
    from aimds.pipeline import Guard

    settings = Settings.from_env()
    if detectors:
        settings = Settings.from_mapping({**settings.__dict__, "detectors": detectors.split(",")})
    if policy:
        settings = Settings.from_mapping({**settings.__dict__, "policy": policy})
    if data_dir:  # that store's attack memory (exemplars learned from feedback) joins the detectors
        names = [*settings.detectors, *([] if "memory" in settings.detectors else ["memory"])]
        options = {**settings.detector_options, "memory": {**settings.detector_options.get("memory", {}),
                                                            "data_dir": data_dir}}
        settings = Settings.from_mapping({**settings.__dict__, "detectors": names, "detector_options": options})
    guard = Guard(settings).load()
    if data_dir:  # and the model version `aimds learn` activated there, if any
        from aimds.server.model_reload import ModelReloader
        from aimds.store.models import ModelRegistry
        from aimds.store.sqlite import SQLiteStore

        ModelReloader(guard, ModelRegistry(SQLiteStore(data_dir))).check()
    return guard


_data_dir_opt = click.option("--data-dir", type=click.Path(file_okay=False),
                             help="Use this data directory's attack memory (what feedback taught it).")


def _write_json(path: str, obj: Any) -> None:
    if path == "-":
        click.echo(json.dumps(obj, indent=2, ensure_ascii=False))
    else:
        Path(path).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", "utf-8")


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AIMDSError as exc:
            click.echo(f"aimds: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="aimds")
def main() -> None:
    """AIMDS — AI Manipulation Defense System."""


_detectors_opt = click.option("--detectors", help="Comma-separated detector names (default: from settings).")
_policy_opt = click.option("--policy", help="Policy name or YAML path.")


@main.command()
@click.argument("text", required=False)
@click.option("--file", "file_", type=click.Path(dir_okay=False), help="JSONL file with a 'text' per line.")
@click.option("--role", default="user", show_default=True,
              type=click.Choice(["user", "system", "assistant", "tool", "document"]))
@click.option("--direction", default="input", show_default=True, type=click.Choice(["input", "output"]))
@click.option("--pretty/--compact", default=None, help="Indent JSON (default: indent for one text).")
@_detectors_opt
@_policy_opt
@_data_dir_opt
def scan(text: str | None, file_: str | None, role: str, direction: str, pretty: bool | None,
         detectors: str | None, policy: str | None, data_dir: str | None) -> None:
    """Scan TEXT (or '-' for stdin, or --file F.jsonl) and print the verdict as JSON."""
    from aimds.train.data import read_jsonl
    from aimds.types import ScanRequest

    if (text is None) == (file_ is None):
        raise click.UsageError("give either TEXT or --file")
    guard = _guard(detectors, policy, data_dir)
    if file_ is not None:
        for i, row in enumerate(read_jsonl(file_)):
            req = ScanRequest(text=row["text"], role=row.get("role", role), direction=row.get("direction", direction))
            try:
                out: dict[str, Any] = guard.scan(req).to_dict()
            except AIMDSError as exc:
                out = {"error": {"code": type(exc).__name__, "message": str(exc)}}
            out = {"index": i, **({"id": row["id"]} if "id" in row else {}), **out}
            click.echo(json.dumps(out, ensure_ascii=False, indent=2 if pretty else None))
        return
    if text == "-":
        text = sys.stdin.read()
    verdict = guard.scan(ScanRequest(text=text or "", role=role, direction=direction))
    click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False, indent=None if pretty is False else 2))


@main.command("eval")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled JSONL: text, label (0/1), category, source.")
@click.option("--sessions", "sessions", type=click.Path(exists=True, dir_okay=False),
              help="Labelled multi-turn JSONL: session_id, turns [{role, text}], label, category.")
@click.option("--json", "json_out", help="Write the report as JSON to this path ('-' for stdout).")
@click.option("--limit", type=int, help="Only the first N rows.")
@click.option("--errors", "errors_out", type=click.Path(dir_okay=False),
              help="Write every missed attack and flagged benign row (position, fields but the text, action, risk, "
                   "strongest findings) as JSONL to this path.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
@_detectors_opt
@_policy_opt
@_data_dir_opt
def eval_(data: str | None, sessions: str | None, json_out: str | None, limit: int | None, errors_out: str | None,
          progress: bool | None, detectors: str | None, policy: str | None, data_dir: str | None) -> None:
    """Evaluate detection on labelled data: TPR, FPR, precision, F1, latency, per category/source/rule.

    With --sessions, a session counts as flagged when any turn's verdict is not 'allow'; the report is
    for the pipeline with session analysis, with single-message detection alone beside it.
    """
    from tqdm import tqdm

    if (data is None) == (sessions is None):
        raise click.UsageError("give exactly one of --data or --sessions")
    if sessions is not None:
        if errors_out:
            raise click.UsageError("--errors is for --data")
        _eval_sessions(sessions, json_out, limit, detectors, policy, data_dir)
        return
    assert data is not None

    from aimds.eval.metrics import evaluate, format_report
    from aimds.train.data import read_jsonl

    rows = read_jsonl(data)[:limit]
    missing = [i for i, r in enumerate(rows) if "label" not in r]
    if missing:
        raise click.UsageError(f"{data}: row {missing[0] + 1} has no 'label'")
    guard = _guard(detectors, policy, data_dir)
    show = sys.stderr.isatty() if progress is None else progress
    errors: list[dict[str, Any]] | None = [] if errors_out else None
    report = evaluate(guard, rows, (lambda it: tqdm(it, desc="eval", unit="text", file=sys.stderr)) if show else None,
                      errors=errors)
    click.echo(format_report(report))
    if json_out:
        _write_json(json_out, report)
    if errors_out and errors is not None:
        Path(errors_out).write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors), "utf-8")


def _eval_sessions(path: str, json_out: str | None, limit: int | None, detectors: str | None,
                   policy: str | None, data_dir: str | None = None) -> None:
    from aimds.eval.sessions import evaluate_sessions
    from aimds.train.data import read_jsonl

    rows = read_jsonl(path, require="turns")[:limit]
    bad = [i for i, r in enumerate(rows) if "label" not in r]
    if bad:
        raise click.UsageError(f"{path}: row {bad[0] + 1} has no 'label'")
    guard = _guard(detectors, policy, data_dir)
    report = evaluate_sessions(guard, rows, analysis=True)
    single = evaluate_sessions(guard, rows, analysis=False)
    report["single_message"] = {"overall": single["overall"]}
    o, so = report["overall"], single["overall"]
    click.echo(f"sessions: {o.get('n', len(rows))}  with session analysis: TPR {o['tpr']:.3f}  FPR {o['fpr']:.3f}  "
               f"|  single-message only: TPR {so['tpr']:.3f}  FPR {so['fpr']:.3f}")
    if json_out:
        _write_json(json_out, report)


@main.command()
@click.option("--json", "json_out", help="Write the report as JSON to this path ('-' for stdout).")
@click.option("-n", "n", default=300, show_default=True, help="Timed texts per size.")
@click.option("--memory", is_flag=True, help="Add the attack-memory detector (seed memory, or --data-dir's).")
@click.option("--sizes", default="100,1000,10000", show_default=True, help="Comma-separated text sizes (characters).")
@click.option("--texts", "texts_file", type=click.Path(exists=True, dir_okay=False),
              help="JSONL with a 'text' field: cut the timed texts from these rows instead of the built-in corpus.")
@click.option("--warmup", default=100, show_default=True, help="Untimed texts scanned first, per size.")
@_detectors_opt
@_policy_opt
@_data_dir_opt
def bench(json_out: str | None, n: int, memory: bool, sizes: str, texts_file: str | None, warmup: int,
          detectors: str | None, policy: str | None, data_dir: str | None) -> None:
    """Measure in-process latency (µs) of the pipeline and each tier for ~100/1k/10k-character texts."""
    from aimds.eval.bench import format_bench, run_bench
    from aimds.train.data import read_jsonl

    if memory and not data_dir:
        from aimds.config import Settings

        names = (detectors.split(",") if detectors else list(Settings.from_env().detectors))
        detectors = ",".join([*names, *([] if "memory" in names else ["memory"])])
    rows = [str(r["text"]) for r in read_jsonl(texts_file)] if texts_file else None
    report = run_bench(_guard(detectors, policy, data_dir), n=n, warmup=warmup,
                       sizes=tuple(int(x) for x in sizes.split(",") if x.strip()), rows=rows)
    click.echo(format_bench(report))
    if json_out:
        _write_json(json_out, report)


def _families(spec: str | None) -> tuple[str, ...] | None:
    """``--families``: None (the default set), a full list, or '+name' items added to the default set."""
    if not spec:
        return None
    from aimds.train.augment import DEFAULT_FAMILIES, FAMILIES

    items = [x.strip() for x in spec.split(",") if x.strip()]
    out = list(DEFAULT_FAMILIES) if all(x.startswith("+") for x in items) else []
    for x in items:
        name = x.lstrip("+")
        if name not in FAMILIES:
            raise click.BadParameter(f"unknown family {name!r} (known: {', '.join(FAMILIES)})", param_hint="--families")
        if name not in out:
            out.append(name)
    return tuple(out)


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with train.jsonl and dev.jsonl.")
@click.option("--out", type=click.Path(dir_okay=False), help="Model path (default: the packaged model).")
@click.option("--seed", default=13, show_default=True)
@click.option("--synthetic/--no-synthetic", default=True, show_default=True, help="Add our generated data.")
@click.option("--families", default=None,
              help="Comma-separated augmentation families (default: the shipped set); '+name' adds to it.")
def train(data_dir: str | None, out: str | None, seed: int, synthetic: bool, families: str | None) -> None:
    """Train the linear classifier (needs the 'train' extra); then run `aimds tune`."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise click.UsageError("training needs scikit-learn: pip install 'aimds[train]'") from None
    from aimds.detect.linear_model import default_model_path
    from aimds.train.classifier import TrainConfig
    from aimds.train.classifier import train as run_train
    from aimds.train.data import default_data_dir

    folder = Path(data_dir) if data_dir else default_data_dir()
    target = Path(out) if out else default_model_path()
    fams = _families(families)
    meta = run_train(folder, target, TrainConfig(seed=seed, synthetic=synthetic, families=fams),
                     log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({"model": str(target), "version": meta["version"]}, indent=2))


@main.command()
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled dev JSONL (default: dev.jsonl in the datasets folder).")
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write (default: the packaged file).")
@click.option("--target-fpr", default=0.0095, show_default=True, help="False-positive budget on benign rows.")
@click.option("--slack", default=0.01, show_default=True,
              help="TPR the cascade gate may give up for speed (0 = run the encoder whenever it helps).")
def tune(data: str | None, out: str | None, target_fpr: float, slack: float) -> None:
    """Choose the fusion, thresholds and the encoder's cascade gate on dev data."""
    from aimds.detect.operating_points import default_path
    from aimds.train.data import default_data_dir
    from aimds.train.tune import TuneConfig
    from aimds.train.tune import tune as run_tune

    dev = Path(data) if data else default_data_dir() / "dev.jsonl"
    cfg = TuneConfig(target_fpr=target_fpr, slack=slack)
    doc = run_tune(dev, Path(out) if out else default_path(), cfg, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(doc, indent=2))


@main.group()
def rules() -> None:
    """Inspect and test the signature rules."""


@rules.command("list")
@click.option("--category", help="Only rules of this category.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def rules_list(category: str | None, as_json: bool) -> None:
    """List the rules."""
    from aimds.detect.signatures import load_rules

    for r in load_rules():
        if category and r.category != category:
            continue
        if as_json:
            click.echo(json.dumps({"id": r.id, "title": r.title, "category": str(r.category), "severity": r.severity,
                                   "confidence": r.confidence, "lang": r.lang, "status": r.status, "file": r.source}))
        else:
            click.echo(f"{r.id:<22}{r.category:<20}{r.severity:>3}  {r.confidence:<7}{r.lang:<4}{r.title}")


@rules.command("test")
@click.option("--benign", type=click.Path(exists=True, dir_okay=False),
              help="Also count per-rule hits on the label-0 rows of this JSONL.")
def rules_test(benign: str | None) -> None:
    """Run every rule's match/no_match examples (exit 1 on any failure)."""
    from aimds.detect.signatures import RuleSet, load_rules
    from aimds.normalize import normalize

    all_rules = load_rules()
    rs = RuleSet(all_rules)

    def fired(i: int, text: str) -> bool:
        return any(i in rs.matching(v.text) for v in normalize(text).views if v.name != "original")

    failures = 0
    for i, r in enumerate(all_rules):
        for t in r.match:
            if not fired(i, t):
                failures += 1
                click.echo(f"FAIL {r.id}: should match {t!r}")
        for t in r.no_match:
            if fired(i, t):
                failures += 1
                click.echo(f"FAIL {r.id}: should not match {t!r}")
    click.echo(f"{len(all_rules)} rules, {failures} failing examples")
    if benign:
        from collections import Counter

        from aimds.train.data import read_jsonl

        hits: Counter[str] = Counter()
        for row in read_jsonl(benign):
            if int(row.get("label", 0)) != 0:
                continue
            for v in normalize(row["text"]).views:
                if v.name == "original":
                    continue
                for i in rs.matching(v.text):
                    hits[all_rules[i].id] += 1
        click.echo(f"per-rule hits on benign rows of {benign}:")
        for rid, c in hits.most_common():
            click.echo(f"  {rid}: {c}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()


def _add_service_commands() -> None:
    from aimds.cli_learn import COMMANDS as LEARN_COMMANDS
    from aimds.cli_memory import COMMANDS as MEMORY_COMMANDS
    from aimds.cli_response import COMMANDS as RESPONSE_COMMANDS
    from aimds.cli_service import COMMANDS
    from aimds.respond.policy.cli import policy

    main.add_command(policy)

    for command in (*COMMANDS, *RESPONSE_COMMANDS, *MEMORY_COMMANDS, *LEARN_COMMANDS):
        main.add_command(command)


_add_service_commands()
