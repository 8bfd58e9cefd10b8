"""The user's model registry: registered bundles and weight files, and the official public weights.

Everything lives under ``editkit_home()`` (``~/.cache/editkit``, or ``$EDITKIT_HOME``):
``registry.json`` records bundles (name -> folder) and weights (name -> file, kind, SHA-256, size);
``weights/`` receives downloads; ``bundles/`` receives bundles composed from registered files.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .atomic import atomic_path, atomic_write_text
from .bundle import MANIFEST, Bundle, file_entry, is_bundle, load_bundle, sha256_file, verify_bundle, write_manifest
from .errors import (BadInputError, CheckpointError, EditkitError, MissingWeightsError, UnsafeCheckpointError,
                     UsageError)

ENV_HOME = "EDITKIT_HOME"
BUNDLED_NAME = "bundled"
KINDS = ("generator", "encoder", "navigator")

NVIDIA_LICENCE = "NVIDIA Source Code License (non-commercial)"
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"


@dataclass(frozen=True)
class OfficialFile:
    """A public weights file editkit knows by name. ``sha256`` None: recorded when first downloaded/added."""

    name: str
    kind: str
    url: str
    filename: str
    format: str
    licence: str
    notes: str = ""
    sha256: str | None = None
    sha256_prefix: str | None = None  # torchvision files carry the first hex digits of their hash in the name
    direct: bool = True  # False: no scriptable URL (Google Drive); the user downloads it in a browser


OFFICIAL: dict[str, OfficialFile] = {f.name: f for f in [
    OfficialFile("ffhq-1024-ada", "generator", f"{_ADA}/ffhq.pkl", "ffhq.pkl", "NVIDIA network pickle", NVIDIA_LICENCE,
                 "StyleGAN2-ADA FFHQ 1024, num_ws 18"),
    OfficialFile("ffhq-256", "generator",
                 f"{_ADA}/transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl",
                 "ffhq-res256-mirror-paper256-noaug.pkl", "NVIDIA network pickle", NVIDIA_LICENCE, "FFHQ 256, num_ws 14"),
    OfficialFile("ffhq-512", "generator",
                 f"{_ADA}/transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl",
                 "ffhq-res512-mirror-stylegan2-noaug.pkl", "NVIDIA network pickle", NVIDIA_LICENCE,
                 "FFHQ 512, num_ws 16 (the ContraFeat authors' FFHQ generator)"),
    OfficialFile("ffhq-1024", "generator",
                 f"{_ADA}/transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl",
                 "ffhq-res1024-mirror-stylegan2-noaug.pkl", "NVIDIA network pickle", NVIDIA_LICENCE, "FFHQ 1024, num_ws 18"),
    OfficialFile("celebahq-256", "generator",
                 f"{_ADA}/transfer-learning-source-nets/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl",
                 "celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl", "NVIDIA network pickle",
                 NVIDIA_LICENCE, "CelebA-HQ 256"),
    OfficialFile("e4e-ffhq", "encoder", "https://drive.google.com/file/d/1cUv_reLE6k3604or78EranS7XzuVMWeO/view",
                 "e4e_ffhq_encode.pt", "e4e checkpoint {'state_dict', 'latent_avg', 'opts'}",
                 "MIT (code); decoder is an FFHQ StyleGAN2 (NVIDIA non-commercial)",
                 "omertov/encoder4editing README, 'FFHQ Inversion'", direct=False),
    OfficialFile("alexnet", "sensor", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                 "alexnet-owt-7be5be79.pth", "torchvision state dict", "BSD-3-Clause (torchvision)",
                 "the paper's feature network", sha256_prefix="7be5be79"),
    OfficialFile("vgg16", "sensor", "https://download.pytorch.org/models/vgg16-397923af.pth", "vgg16-397923af.pth",
                 "torchvision state dict", "BSD-3-Clause (torchvision)", "LPIPS trunk, 528 MB", sha256_prefix="397923af"),
]}


def editkit_home() -> Path:
    """The user directory (``$EDITKIT_HOME`` or ``~/.cache/editkit``)."""
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "editkit"


def bundled_path() -> Path:
    """Where the default bundle ships inside the package."""
    return Path(__file__).resolve().parent / "bundled"


def _registry_file() -> Path:
    return editkit_home() / "registry.json"


def read_registry() -> dict:
    f = _registry_file()
    if not f.is_file():
        return {"bundles": {}, "weights": {}}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"registry file is unreadable ({exc}); fix or delete it", f) from None
    data.setdefault("bundles", {})
    data.setdefault("weights", {})
    return data


def write_registry(data: dict) -> None:
    atomic_write_text(_registry_file(), json.dumps(data, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------- lookup

def default_bundle() -> Bundle:
    """The bundle shipped in the package; a clear error when this install does not have it."""
    p = bundled_path()
    if not (p / MANIFEST).is_file():
        raise MissingWeightsError(
            f"the bundled model is not installed (no {p / MANIFEST}); pass --model with a bundle folder, "
            "or register one with `editkit models add`")
    return load_bundle(p)


def resolve_bundle(spec: str | Path | None) -> Bundle:
    """A bundle from None/'bundled' (the default), a folder/``bundle.json`` path, or a registered name."""
    if spec is None or str(spec) in (BUNDLED_NAME, "default", ""):
        return default_bundle()
    if is_bundle(spec):
        return load_bundle(spec)
    reg = read_registry()
    if str(spec) in reg["bundles"]:
        return load_bundle(reg["bundles"][str(spec)]["path"])
    if Path(spec).exists():
        raise UsageError("not a model bundle (expected a folder with bundle.json, or a registered bundle name)", spec)
    known = sorted(reg["bundles"]) + [BUNDLED_NAME]
    raise UsageError(f"unknown model '{spec}' (known: {', '.join(known)}; see `editkit models list`)")


def resolve_weights(spec: str | Path, kind: str | None = None) -> Path:
    """A weights file from a path or a registered weights name (optionally of a given kind)."""
    p = Path(spec).expanduser()
    if p.is_file():
        return p
    reg = read_registry()
    entry = reg["weights"].get(str(spec))
    if entry is not None:
        if kind and entry.get("kind") != kind:
            raise UsageError(f"registered weights '{spec}' are a {entry.get('kind')}, not a {kind}")
        fp = Path(entry["path"])
        if not fp.is_file():
            raise BadInputError(f"registered weights '{spec}' are missing (re-add them with `editkit models add`)", fp)
        return fp
    if kind in KINDS and (str(spec) in reg["bundles"] or str(spec) in (BUNDLED_NAME, "default") or is_bundle(spec)):
        b = resolve_bundle(spec)  # a bundle stands for its generator / encoder / default navigator
        fp = {"generator": b.generator_path, "encoder": b.encoder_path,
              "navigator": b.navigator_path() if b.navigators else None}[kind]
        if fp is None:
            raise UsageError(f"bundle '{b.name}' has no {kind}", b.root)
        return fp
    if str(spec) in OFFICIAL:
        raise MissingWeightsError(_missing_message(OFFICIAL[str(spec)]))
    raise BadInputError("file not found (and not a registered weights name)", spec)


def is_generator_spec(spec: str | Path) -> bool:
    """True for a weights file (not a bundle) or the registered name of a generator."""
    p = Path(spec).expanduser()
    if p.is_file() and p.name != MANIFEST:
        return True
    entry = read_registry()["weights"].get(str(spec))
    return entry is not None and entry.get("kind") == "generator"


def _missing_message(off: OfficialFile, reason: str = "") -> str:
    how = (f"download {off.filename} from {off.url} in a browser" if not off.direct
           else f"fetch {off.url} on a machine with internet")
    why = f" ({reason})" if reason else ""
    return (f"official weights '{off.name}' ({off.filename}) are not available here{why}; {how}, "
            f"then register the local copy with `editkit models add PATH --name {off.name}`")


# ---------------------------------------------------------------------------------------------- checks

def probe_weights(path: str | Path, kind: str | None = None) -> tuple[str, dict]:
    """Load a weights file to prove it is usable; returns (kind, short description).

    With ``kind`` None, tries generator, then encoder, then navigator readers.
    """
    p = Path(path)
    if not p.is_file():
        raise BadInputError("file not found", p)
    kinds = [kind] if kind else list(KINDS)
    errors: list[str] = []
    for k in kinds:
        try:
            return k, _LOADERS[k](p)
        except UnsafeCheckpointError as exc:  # the reason (a forbidden global) matters more than the kind
            raise UnsafeCheckpointError(_strip_path(str(exc), p), p) from None
        except EditkitError as exc:
            errors.append(f"{k}: {_strip_path(str(exc), p)}")
        except Exception as exc:  # noqa: BLE001 - a reader failed on a foreign file
            errors.append(f"{k}: {type(exc).__name__}: {exc}")
    if kind:
        raise CheckpointError(f"does not load as a {kind} ({errors[0]})", p)
    raise CheckpointError(f"does not load as a generator, encoder or navigator ({errors[0][:200]})", p)


def _strip_path(message: str, path: Path) -> str:
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _probe_generator(p: Path) -> dict:
    import editkit

    G = editkit.load_generator(p, device="cpu")
    return {"resolution": G.resolution, "num_ws": G.num_ws, "w_dim": G.w_dim}


def _probe_encoder(p: Path) -> dict:
    import inversion

    enc = inversion.load_encoder(p)
    return {"type": type(enc).__name__}


def _probe_navigator(p: Path) -> dict:
    import navigator

    nav = navigator.load_navigator(p)
    return {"directions": nav.num_directions}


_LOADERS: dict[str, Callable[[Path], dict]] = {"generator": _probe_generator, "encoder": _probe_encoder,
                                               "navigator": _probe_navigator}


# ---------------------------------------------------------------------------------------------- changes

def add_weights(path: str | Path, name: str | None = None, kind: str | None = None, overwrite: bool = False) -> dict:
    """Register a weights file after proving it loads; records its SHA-256 and size.

    A name of a known official file checks the hash against the known one (or its name prefix).
    """
    p = Path(path).expanduser().resolve()
    kind, info = probe_weights(p, kind)
    name = name or p.stem
    digest = sha256_file(p)
    off = OFFICIAL.get(name)
    if off is not None:
        if off.sha256 and digest != off.sha256:
            raise CheckpointError(f"SHA-256 {digest[:16]}... differs from the official {off.name} ({off.sha256[:16]}...)", p)
        if off.sha256_prefix and not digest.startswith(off.sha256_prefix):
            raise CheckpointError(f"SHA-256 {digest[:16]}... does not start with {off.sha256_prefix} as {off.filename} does", p)
    reg = read_registry()
    if (name in reg["weights"] or name in reg["bundles"]) and not overwrite:
        raise UsageError(f"a model named '{name}' is already registered (use --overwrite to replace it)")
    entry = {"path": str(p), "kind": kind, "sha256": digest, "bytes": p.stat().st_size, "info": info,
             "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if off is not None:
        entry.update(official=off.name, licence=off.licence, url=off.url)
    reg["bundles"].pop(name, None)
    reg["weights"][name] = entry
    write_registry(reg)
    return {"name": name, **entry}


def add_bundle(path: str | Path, name: str | None = None, overwrite: bool = False) -> dict:
    """Register a bundle folder after verifying its hashes and that its generator loads."""
    b = verify_bundle(Path(path).expanduser().resolve())
    _probe_generator(b.generator_path)
    name = name or b.name
    reg = read_registry()
    if (name in reg["bundles"] or name in reg["weights"] or name == BUNDLED_NAME) and not overwrite:
        raise UsageError(f"a model named '{name}' is already registered (use --overwrite to replace it)")
    reg["weights"].pop(name, None)
    reg["bundles"][name] = {"path": str(b.root), "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_registry(reg)
    return {"name": name, "path": str(b.root), "bundle": b.name}


def compose_bundle(name: str, generator: str | Path, encoder: str | Path | None = None,
                   navigators: dict[str, str | Path] | None = None, alignment: str | dict = "ffhq",
                   licence: str = "", overwrite: bool = False) -> Bundle:
    """Register a bundle made of files kept where they are (e.g. official weights + a trained navigator).

    Each file is loaded once (proving it works) and hashed; the manifest goes to ``bundles/NAME/``.
    """
    gen = resolve_weights(generator, "generator").resolve()
    probe_weights(gen, "generator")
    enc = None
    if encoder is not None:
        enc = resolve_weights(encoder, "encoder").resolve()
        probe_weights(enc, "encoder")
    navs: dict[str, str] = {}
    for k, v in (navigators or {}).items():
        fp = resolve_weights(v, "navigator").resolve()
        probe_weights(fp, "navigator")
        navs[k] = str(fp)
    files = {str(fp): file_entry(fp) for fp in [gen, *([enc] if enc else []), *map(Path, navs.values())]}
    if not licence:
        licence = "; ".join(sorted({e["licence"] for e in read_registry()["weights"].values()
                                    if e.get("path") in files and e.get("licence")})) or "see the licences of the source files"
    root = editkit_home() / "bundles" / name
    reg = read_registry()
    if (name in reg["bundles"] or name in reg["weights"] or name == BUNDLED_NAME) and not overwrite:
        raise UsageError(f"a model named '{name}' is already registered (use --overwrite to replace it)")
    bundle = Bundle(root=root, name=name, generator=str(gen), encoder=str(enc) if enc else None, navigators=navs,
                    default_navigator=next(iter(navs), None), alignment=alignment, files=files, licence=licence,
                    provenance={"composed_by": "editkit models add", "sources": list(files)})
    write_manifest(root, bundle)
    reg["weights"].pop(name, None)
    reg["bundles"][name] = {"path": str(root), "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_registry(reg)
    return bundle


def remove(name: str) -> None:
    reg = read_registry()
    if name not in reg["bundles"] and name not in reg["weights"]:
        raise UsageError(f"no registered model named '{name}'")
    reg["bundles"].pop(name, None)
    reg["weights"].pop(name, None)
    write_registry(reg)


def list_models() -> list[dict]:
    """Rows for ``editkit models list``: the bundled model, registered bundles and weights, known official files."""
    rows: list[dict] = []
    bp = bundled_path()
    rows.append({"name": BUNDLED_NAME, "type": "bundle", "status": "installed" if (bp / MANIFEST).is_file() else "missing",
                 "where": str(bp)})
    reg = read_registry()
    for name, e in sorted(reg["bundles"].items()):
        ok = (Path(e["path"]) / MANIFEST).is_file()
        rows.append({"name": name, "type": "bundle", "status": "registered" if ok else "missing", "where": e["path"]})
    for name, e in sorted(reg["weights"].items()):
        ok = Path(e["path"]).is_file()
        rows.append({"name": name, "type": e.get("kind", "?"), "status": "registered" if ok else "missing",
                     "where": e["path"]})
    for name, off in OFFICIAL.items():
        if name not in reg["weights"]:
            rows.append({"name": name, "type": off.kind, "status": "not downloaded", "where": off.url})
    return rows


def info(spec: str) -> dict:
    """Details of a registered model, a bundle path, an official file name or a weights file."""
    reg = read_registry()
    if spec in reg["weights"]:
        return {"name": spec, "type": "weights", **reg["weights"][spec]}
    if spec in OFFICIAL:
        return {"name": spec, "type": "official", "registered": False, **asdict(OFFICIAL[spec])}
    try:
        b = resolve_bundle(spec)
    except UsageError:
        p = Path(spec)
        if p.is_file():
            kind, desc = probe_weights(p)
            return {"name": p.name, "type": "weights", "path": str(p), "kind": kind, "info": desc, "bytes": p.stat().st_size}
        raise
    return {"name": b.name, "type": "bundle", "path": str(b.root), **{k: v for k, v in b.manifest().items() if k != "name"},
            "total_bytes": b.total_bytes()}


def verify(spec: str) -> dict:
    """Re-hash a bundle's files or a registered weights file; raises CheckpointError on a mismatch."""
    reg = read_registry()
    if spec in reg["weights"]:
        e = reg["weights"][spec]
        fp = Path(e["path"])
        if not fp.is_file():
            raise BadInputError(f"registered weights '{spec}' are missing", fp)
        digest = sha256_file(fp)
        if digest != e["sha256"]:
            raise CheckpointError(f"SHA-256 changed since it was registered ({digest[:16]}... != {e['sha256'][:16]}...)", fp)
        return {"name": spec, "files": 1, "bytes": fp.stat().st_size}
    b = verify_bundle(resolve_bundle(spec))
    return {"name": b.name, "files": len(b.files), "bytes": b.total_bytes()}


def download(name: str, dest: str | Path | None = None, timeout: float = 10.0, overwrite: bool = False,
             progress: Callable[[int, int | None], None] | None = None) -> dict:
    """Download a known official file into ``dest`` (default ``$EDITKIT_HOME/weights``) and register it.

    Offline (or for files with no scriptable URL) this fails with a one-line MissingWeightsError that says
    which file is needed and how to register a local copy.
    """
    off = OFFICIAL.get(name)
    if off is None:
        raise UsageError(f"unknown official file '{name}' (known: {', '.join(OFFICIAL)})")
    if not off.direct:
        raise MissingWeightsError(_missing_message(off, "no direct download link"))
    target = Path(dest).expanduser() if dest else editkit_home() / "weights"
    target = target / off.filename if target.suffix == "" or target.is_dir() else target
    if target.exists() and not overwrite:
        raise UsageError("output exists (use --overwrite to replace it)", target)
    try:
        with urllib.request.urlopen(off.url, timeout=timeout) as resp, atomic_path(target) as tmp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            with open(tmp, "wb") as f:
                while block := resp.read(1 << 20):
                    f.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            if total is not None and done != total:
                raise MissingWeightsError(_missing_message(off, f"download ended after {done} of {total} bytes"))
            digest = sha256_file(tmp)
            if off.sha256 and digest != off.sha256:
                raise CheckpointError(f"downloaded file's SHA-256 {digest[:16]}... differs from the official one", off.url)
            if off.sha256_prefix and not digest.startswith(off.sha256_prefix):
                raise CheckpointError(f"downloaded file's SHA-256 does not start with {off.sha256_prefix}", off.url)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MissingWeightsError(_missing_message(off, f"download failed: {reason}")) from None
    reg = read_registry()
    entry = {"path": str(target.resolve()), "kind": off.kind, "sha256": digest, "bytes": target.stat().st_size,
             "official": off.name, "licence": off.licence, "url": off.url,
             "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sha256_recorded_on_first_download": off.sha256 is None}
    reg["weights"][name] = entry
    write_registry(reg)
    return {"name": name, **entry}


def copy_into_home(path: str | Path) -> Path:
    """Copy a file into ``$EDITKIT_HOME/weights`` (for ``models add --copy``)."""
    src = Path(path)
    dst = editkit_home() / "weights" / src.name
    if dst.exists():
        raise UsageError("output exists in the registry folder", dst)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst
