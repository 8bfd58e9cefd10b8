"""``editkit evaluate``: the paper's disentanglement score and number of discovered attributes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..atomic import atomic_write_text, check_writable
from ..cli_app import app
from ..errors import UsageError
from .train_navigator import resolve_device, resolve_generator

BASELINES = ("ganspace", "sefa")


def parse_layers(spec: str | None) -> list[int] | None:
    """'0-4' or '0,2,5' (or a mix) -> layer indices; None/'' -> None (all layers)."""
    if not spec:
        return None
    out: list[int] = []
    try:
        for part in spec.split(","):
            a, _, b = part.strip().partition("-")
            out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    except ValueError:
        raise UsageError(f"--baseline-layers must look like '0-4' or '0,2,5', got {spec!r}") from None
    return out


def load_any_navigator(spec: str, G, num_directions: int, pca_samples: int, layers: list[int] | None = None):
    """A navigator file / registered name, or a baseline built on the fly ('ganspace', 'sefa')."""
    from navigator.bases import baseline_navigator
    from navigator.io import load_navigator
    from ..registry import resolve_weights

    if spec in BASELINES:
        return baseline_navigator(G, spec, num_directions, layers=layers, n_samples=pca_samples)
    nav = load_navigator(resolve_weights(spec, "navigator"))
    if (nav.num_ws, nav.w_dim) != (G.num_ws, G.w_dim):
        raise UsageError(f"navigator is for W+ {nav.num_ws}x{nav.w_dim}, the generator has {G.num_ws}x{G.w_dim}")
    return nav


@app.command("evaluate")
def evaluate_cmd(
    generator: str = typer.Option(..., "--generator", "-g", help="Generator: network file, bundle folder or registered name."),
    navigator: Optional[str] = typer.Option(None, "--navigator", "-n", help="Navigator file or registered name, or a baseline: ganspace, sefa (not needed with --quality)."),
    quality: bool = typer.Option(False, "--quality", help="Measure the generator instead: face-network Fréchet distance and k-NN precision/recall of its samples against real faces (--real)."),
    real: Optional[Path] = typer.Option(None, "--real", help="--quality: the real faces to compare with (folder or zip of images, e.g. the generator's training set)."),
    quality_samples: int = typer.Option(5000, "--quality-samples", min=10, help="--quality: generated faces and real faces compared (issue: 5,000 each)."),
    out: Path = typer.Option(Path("evaluation"), "--out", "-o", help="Output folder for evaluation.json and heatmap.png."),
    samples: int = typer.Option(500, "--samples", min=1, help="Codes per direction (paper: 500)."),
    strength: float = typer.Option(0.1, "--strength", help="Edit strength s: responses compare w+s·D and w-s·D (the authors' Table 2: 0.1)."),
    truncation: Optional[float] = typer.Option(None, "--truncation", help="Truncation psi of the evaluation codes (default 0.5 as in the paper; 1.0, none, with --quality)."),
    top: int = typer.Option(30, "--top", min=0, help="K': score the first K' directions (the authors: 30; 0 = all)."),
    order: str = typer.Option("auto", "--order", help="index, magnitude (order directions by perceptual magnitude before taking the first K'), or auto: magnitude when there are more than K' directions (as the authors), else index (the scores do not depend on the order then)."),
    sensor: str = typer.Option("alexnet", "--sensor", help="--order magnitude: alexnet = LPIPS-AlexNet (paper; needs local ImageNet weights), or vgg16 / random-alexnet feature distance."),
    sensor_weights: Optional[Path] = typer.Option(None, "--sensor-weights", help="Local ImageNet weights for the ordering sensor."),
    baseline_directions: int = typer.Option(30, "--baseline-directions", help="K for a ganspace/sefa baseline."),
    baseline_layers: Optional[str] = typer.Option(None, "--baseline-layers", help="W+ layers a ganspace/sefa baseline edits, e.g. '0-4' or '0,2,5' (default: all)."),
    pca_samples: int = typer.Option(100_000, "--pca-samples", help="Mapped samples for the ganspace PCA basis."),
    probe_name: str = typer.Option("facenets", "--probe", help="Attribute probe: facenets (pretrained face networks: age, gender, 7 expressions, pose, mouth/eyes, identity change, colours) or dlib (the original landmark/colour probe, for comparison with earlier results)."),
    detect: bool = typer.Option(True, "--detect/--no-detect", help="--probe dlib: detect faces with dlib (off: use the aligned-face box)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Codes per synthesis batch."),
    seed: int = typer.Option(0, "--seed", help="Seed of the evaluation codes."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs in OUT."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
) -> None:
    """Score a navigator with the paper's two metrics and the authors' settings (500 samples, truncation
    0.5, constant noise, strength 0.1, the first 30 directions after perceptual ordering), measured with
    an offline attribute probe (pretrained face networks, or dlib landmarks + colour regions): per-direction
    top attributes, disentanglement score and discovered attributes; writes JSON and a heat map. The output
    says which predictor was used: scores from it are not the paper's numbers (the authors' 24-attribute
    ResNet-50 is not available)."""
    import torch
    from ..checkpoints import load_generator
    from navigator.metrics import attribute_responses, protocol_note, save_heatmap, summarize
    from navigator.probe import PROBES, build_probe

    if quality:
        return _quality(generator, out, real, quality_samples, 1.0 if truncation is None else truncation, seed,
                        device, overwrite)
    truncation = 0.5 if truncation is None else truncation
    if navigator is None:
        raise UsageError("--navigator is required (or pass --quality to measure the generator)")
    if probe_name not in PROBES:
        raise UsageError(f"--probe must be one of {', '.join(PROBES)}, got {probe_name!r}")
    if order not in ("auto", "index", "magnitude"):
        raise UsageError(f"--order must be auto, index or magnitude, got {order!r}")
    json_path, png_path = out / "evaluation.json", out / "heatmap.png"
    for p in (json_path, png_path):
        check_writable(p, overwrite=overwrite)
    dev = resolve_device(device)
    G = load_generator(resolve_generator(generator), device=dev)
    nav = load_any_navigator(navigator, G, baseline_directions, pca_samples, parse_layers(baseline_layers)).to(dev)
    top_n = min(top, nav.num_directions) if top else None
    if order == "auto":
        order = "magnitude" if top_n is not None and top_n < nav.num_directions else "index"
    probe = build_probe(probe_name, detect=detect, device=dev)
    R = attribute_responses(G, nav, probe, n_samples=samples, strength=strength, truncation=truncation,
                            batch_size=batch_size, seed=seed, progress=progress)
    idx = list(range(nav.num_directions))
    mags = None
    if order == "magnitude":
        from navigator.sensors import LPIPSAlex, build_sensor
        from navigator.traverse import order_by_magnitude, perceptual_magnitude
        g = torch.Generator().manual_seed(seed)
        ws = G.mapping(torch.randn(min(samples, 16), G.z_dim, generator=g).to(dev), truncation_psi=truncation)
        if sensor == "alexnet":
            mags = perceptual_magnitude(G, nav, ws, strength=strength, distance=LPIPSAlex(sensor_weights).to(dev))
        else:
            mags = perceptual_magnitude(G, nav, ws, build_sensor(sensor, sensor_weights).to(dev), strength)
        idx = order_by_magnitude(mags)
    result = summarize(R, probe.names, order=idx, top=top_n)
    predictor = ("editkit's offline landmark/region probe (dlib 68 landmarks + colour regions)" if probe_name == "dlib"
                 else "editkit's face-network probe (face-api age/gender, expression, 68 landmarks, identity + colour regions)")
    protocol = protocol_note(predictor,
                             len(probe.names), samples, truncation, strength, top_n, statistic="standardized mean")
    result.update(generator=str(generator), navigator=str(navigator), samples=samples, strength=strength,
                  truncation=truncation, noise="const", order_by=order,
                  probe="landmarks+regions" if probe_name == "dlib" else "facenets", standardized=True,
                  protocol=protocol,
                  labels=[nav.labels[k] for k in idx],
                  magnitudes=None if mags is None else [float(mags[k]) for k in idx])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps(result, indent=2))
    rows = [f"{k}" + (f" {nav.labels[k]}" if nav.labels[k] else "") for k in idx]
    save_heatmap(png_path, torch.tensor(result["normalized"]).numpy(), rows, list(probe.names),
                 title=f"normalized |response|  DS={result['disentanglement_score']:.3f}  "
                       f"attrs={result['discovered_attributes']}")
    _print_table(result)
    typer.echo(protocol["note"])
    if protocol["differences_from_paper_protocol"]:
        typer.echo("differs from the paper's protocol in: " + "; ".join(protocol["differences_from_paper_protocol"]))
    typer.echo(f"wrote {json_path} and {png_path}")


def _quality(generator: str, out: Path, real: Path | None, n: int, truncation: float, seed: int, device: str,
             overwrite: bool) -> None:
    """``--quality``: the generator-quality measure (editkit.generator_quality), written to quality.json."""
    from rich.console import Console
    from rich.table import Table

    from ..checkpoints import load_generator
    from ..generator_quality import measure_generator

    json_path = out / "quality.json"
    check_writable(json_path, overwrite=overwrite)
    if real is None:
        raise UsageError("--quality needs --real: the real faces the generator was trained on (folder or zip)")
    if not real.exists():
        raise UsageError("real faces not found (pass --real FOLDER_OR_ZIP)", real)
    G = load_generator(resolve_generator(generator), device=resolve_device(device))
    typer.echo(f"measuring {n} samples against {n} real faces from {real} ...")
    res = measure_generator(G, real, n_fake=n, n_real=n, truncation=truncation, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps({"generator": str(generator), "real": str(real),
                                             **{k: v.as_dict() for k, v in res.items()}}, indent=2))
    t = Table(title=f"generator quality ({n} vs {n}, truncation {truncation:g})")
    for col in ("features", "FD (lower is better)", "precision", "recall"):
        t.add_column(col)
    for space, q in res.items():
        t.add_row(space, f"{q.fd:.4f}", f"{q.precision:.3f}", f"{q.recall:.3f}")
    Console(width=100).print(t)
    typer.echo(f"wrote {json_path}")


def _print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="directions: top attributes (normalized response)")
    t.add_column("dir", justify="right")
    t.add_column("label")
    t.add_column("top attributes")
    for row, label in zip(result["directions"], result["labels"]):
        t.add_row(str(row["direction"]), label or "",
                  ", ".join(f"{x['attribute']} {x['normalized']:.2f}" for x in row["top"]))
    con = Console(width=120)
    con.print(t)
    con.print(f"disentanglement score (first {result['top']}): {result['disentanglement_score']:.4f}")
    con.print(f"discovered attributes (first {result['top']}): {result['discovered_attributes']}")
