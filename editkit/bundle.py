"""Model bundles: a folder with ``bundle.json`` and the safetensors files it names.

``bundle.json`` holds::

    {
      "format": "editkit-bundle", "version": 1,
      "name": "utkface64",
      "generator": "generator.safetensors",
      "encoder": "encoder.safetensors",            # optional (null)
      "navigators": {"binary": "navigator-binary.safetensors"},
      "default_navigator": "binary",
      "alignment": "utkface",                      # template name or its full parameters (a dict)
      "files": {"generator.safetensors": {"sha256": "...", "bytes": 123}, ...},
      "licence": "...", "provenance": {...}, "model_card": "MODEL_CARD.md"
    }

File names are relative to the folder; a registry-composed bundle may name absolute paths (official weights
stay where the user keeps them). ``load_bundle`` checks that every file exists with the recorded size;
``verify_bundle`` also checks the SHA-256 of each file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadInputError, CheckpointError, UsageError

MANIFEST = "bundle.json"
FORMAT = "editkit-bundle"
VERSION = 1


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class Bundle:
    """A loaded bundle manifest; paths resolve against ``root``."""

    root: Path
    name: str
    generator: str
    encoder: str | None = None
    navigators: dict[str, str] = field(default_factory=dict)
    default_navigator: str | None = None
    alignment: str | dict = "ffhq"
    files: dict[str, dict] = field(default_factory=dict)
    licence: str = ""
    provenance: dict = field(default_factory=dict)
    model_card: str | None = None
    extra: dict = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    @property
    def generator_path(self) -> Path:
        return self.path(self.generator)

    @property
    def encoder_path(self) -> Path | None:
        return self.path(self.encoder) if self.encoder else None

    def navigator_path(self, name: str | None = None) -> Path:
        """The file of navigator ``name`` (default: the bundle's default navigator)."""
        if not self.navigators:
            raise UsageError(f"bundle '{self.name}' has no navigator", self.root)
        name = name or self.default_navigator or next(iter(self.navigators))
        if name not in self.navigators:
            raise UsageError(f"bundle '{self.name}' has no navigator '{name}' (has: {', '.join(self.navigators)})", self.root)
        return self.path(self.navigators[name])

    @property
    def model_card_path(self) -> Path | None:
        return self.path(self.model_card) if self.model_card else None

    def manifest(self) -> dict:
        """The JSON-able manifest (what ``bundle.json`` holds)."""
        out = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "generator": self.generator,
            "encoder": self.encoder,
            "navigators": dict(self.navigators),
            "default_navigator": self.default_navigator,
            "alignment": self.alignment,
            "files": {k: dict(v) for k, v in self.files.items()},
            "licence": self.licence,
            "provenance": self.provenance,
            "model_card": self.model_card,
        }
        out.update(self.extra)
        return out

    def total_bytes(self) -> int:
        return sum(int(v.get("bytes", 0)) for v in self.files.values())


_KNOWN_KEYS = {"format", "version", "name", "generator", "encoder", "navigators", "default_navigator", "alignment",
               "files", "licence", "provenance", "model_card"}


def is_bundle(path: str | Path) -> bool:
    p = Path(path)
    return (p.is_dir() and (p / MANIFEST).is_file()) or (p.is_file() and p.name == MANIFEST)


def load_bundle(path: str | Path, check_sizes: bool = True) -> Bundle:
    """Read a bundle folder (or its ``bundle.json``); checks the files exist with their recorded sizes."""
    p = Path(path)
    manifest_path = p if p.name == MANIFEST and p.is_file() else p / MANIFEST
    if not manifest_path.is_file():
        raise BadInputError(f"not a model bundle (no {MANIFEST})", p)
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"unreadable bundle manifest ({exc})", manifest_path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInputError(f"not an editkit bundle manifest (expected format '{FORMAT}')", manifest_path)
    if int(data.get("version", 0)) > VERSION:
        raise BadInputError(f"bundle format version {data.get('version')} is newer than this editkit ({VERSION})", manifest_path)
    for key in ("name", "generator"):
        if not data.get(key):
            raise BadInputError(f"bundle manifest lacks '{key}'", manifest_path)
    bundle = Bundle(
        root=manifest_path.parent,
        name=str(data["name"]),
        generator=data["generator"],
        encoder=data.get("encoder") or None,
        navigators=dict(data.get("navigators") or {}),
        default_navigator=data.get("default_navigator"),
        alignment=data.get("alignment") or "ffhq",
        files=dict(data.get("files") or {}),
        licence=data.get("licence", ""),
        provenance=data.get("provenance") or {},
        model_card=data.get("model_card"),
        extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
    )
    if bundle.default_navigator and bundle.default_navigator not in bundle.navigators:
        raise BadInputError(f"default navigator '{bundle.default_navigator}' is not among the bundle's navigators", manifest_path)
    referenced = [bundle.generator, *([bundle.encoder] if bundle.encoder else []), *bundle.navigators.values()]
    for rel in referenced:
        if rel not in bundle.files:
            raise BadInputError(f"bundle manifest has no hash entry for '{rel}'", manifest_path)
    if check_sizes:
        for rel, entry in bundle.files.items():
            fp = bundle.path(rel)
            if not fp.is_file():
                raise BadInputError(f"bundle file is missing: {rel}", bundle.root)
            if "bytes" in entry and fp.stat().st_size != int(entry["bytes"]):
                raise CheckpointError(f"bundle file has {fp.stat().st_size} bytes, manifest says {entry['bytes']} "
                                      "(incomplete copy?)", fp)
    return bundle


def verify_bundle(bundle: Bundle | str | Path) -> Bundle:
    """Check every file's size and SHA-256 against the manifest; raises CheckpointError on a mismatch."""
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    for rel, entry in b.files.items():
        fp = b.path(rel)
        if not fp.is_file():
            raise BadInputError(f"bundle file is missing: {rel}", b.root)
        digest = sha256_file(fp)
        if entry.get("sha256") and digest != entry["sha256"]:
            raise CheckpointError(f"SHA-256 mismatch: file has {digest[:16]}..., manifest says {entry['sha256'][:16]}...", fp)
    return b


def _umask() -> int:
    from .atomic import _UMASK

    return _UMASK


def file_entry(path: str | Path) -> dict:
    p = Path(path)
    return {"sha256": sha256_file(p), "bytes": p.stat().st_size}


def _write_component(obj: Any, dst: Path, kind: str) -> None:
    """Copy a file, or save an in-memory network with its package's saver."""
    if isinstance(obj, (str, Path)):
        src = Path(obj)
        if not src.is_file():
            raise BadInputError(f"{kind} file not found", src)
        shutil.copyfile(src, dst)
    elif kind == "generator":
        from .checkpoints import save_network  # lead's saver (safetensors + JSON config)

        save_network(dst, obj)
    elif kind == "encoder":
        from inversion import save_encoder

        save_encoder(dst, obj)
    elif kind == "navigator":
        from navigator import save_navigator

        save_navigator(obj, dst)
    else:  # pragma: no cover - internal misuse
        raise ValueError(kind)


def write_bundle(
    out_dir: str | Path,
    *,
    name: str,
    generator: Any,
    encoder: Any = None,
    navigators: dict[str, Any] | None = None,
    default_navigator: str | None = None,
    alignment: str | dict = "ffhq",
    licence: str = "",
    provenance: dict | None = None,
    model_card: str | Path | None = None,
    extra_files: dict[str, str | Path] | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Build a bundle folder from files or in-memory networks; written in a temp folder, then renamed.

    ``generator``/``encoder``/navigator values are file paths (copied) or modules (saved as safetensors).
    ``model_card`` is a Markdown file copied as ``MODEL_CARD.md``; ``extra_files`` maps names to files to copy.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise UsageError("output exists (use --overwrite to replace it)", out)
    navigators = navigators or {}
    if default_navigator is None and navigators:
        default_navigator = next(iter(navigators))
    if default_navigator is not None and default_navigator not in navigators:
        raise UsageError(f"default navigator '{default_navigator}' is not among the navigators")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        files: dict[str, dict] = {}

        def put(obj: Any, fname: str, kind: str) -> str:
            _write_component(obj, tmp / fname, kind)
            files[fname] = file_entry(tmp / fname)
            return fname

        gen_name = put(generator, "generator.safetensors", "generator")
        enc_name = put(encoder, "encoder.safetensors", "encoder") if encoder is not None else None
        nav_names = {k: put(v, f"navigator-{k}.safetensors", "navigator") for k, v in navigators.items()}
        card = None
        if model_card is not None:
            card = "MODEL_CARD.md"
            shutil.copyfile(model_card, tmp / card)
        for fname, src in (extra_files or {}).items():
            (tmp / fname).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / fname)
            files[fname] = file_entry(tmp / fname)
        bundle = Bundle(root=out, name=name, generator=gen_name, encoder=enc_name, navigators=nav_names,
                        default_navigator=default_navigator, alignment=alignment, files=files, licence=licence,
                        provenance=provenance or {}, model_card=card)
        (tmp / MANIFEST).write_text(json.dumps(bundle.manifest(), indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes a 0700 folder; bundles are shared package data
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return bundle


def write_manifest(path: str | Path, bundle: Bundle) -> Path:
    """Write ``bundle.json`` for a bundle whose files already exist (used by the registry to compose bundles)."""
    from .atomic import atomic_write_text

    return atomic_write_text(Path(path) / MANIFEST, json.dumps(bundle.manifest(), indent=2) + "\n")
