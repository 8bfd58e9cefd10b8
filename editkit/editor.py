"""``editkit.Editor``: the whole pipeline on real photos (align → invert → edit → render).

    import editkit
    ed = editkit.Editor()                       # the bundled model
    res = ed.edit("me.jpg", attr=3, strength=2)  # or attr=[3, "smile"], strength=[2, -1]
    res.save("me.edited.jpg")

Models are loaded once, when the Editor is created, and reused by every call. Rendering
(``render='transfer'``, the default, keeps the photo's own pixels and carries over only the edit's
change; ``'generated'`` pastes the generator's face back) lives in :mod:`editkit.render`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .atomic import check_writable
from .console import EditkitWarning
from .errors import NoFaceError, UsageError
from .render import RenderError, bounce, make_grid, save_animation, side_by_side, to_uint8

METHODS = ("hybrid", "encoder", "optimize", "pti")
RENDER_MODES = ("transfer", "generated")
#: A strength beyond this multiple of a direction's recommended limit is refused unless ``force=True``
#: (outside the recommended range, but within this, it is a warning): past it faces fall apart.
STRENGTH_HARD_FACTOR = 4.0
#: dlib HOG detections below this score are not edited. On the 20 photos of shared/data/photos
#: (unaligned + no_face), every real face scored >= 0.34 and the one false detection 0.12.
from .defaults import DEFAULT_MIN_FACE_SCORE  # noqa: F401 (re-exported)


@dataclass
class Direction:
    """One navigator direction as users see it."""

    index: int
    label: str | None
    strength_range: tuple[float, float]
    layers: list[int]  # the W+ layers it mostly acts on (attention >= half its peak)
    effect: str | None = None  # measured on real faces at the recommended strength (editkit.label_promise)
    identity_distance: float | None = None  # median identity distance of that edit (same person < 0.6)

    @property
    def name(self) -> str:
        return self.label or f"attr{self.index}"


@dataclass
class FaceEdit:
    """One face: its alignment, the aligned crop before/after, and its W+ codes."""

    index: int
    face: Any  # inversion.align.AlignedFace
    before: np.ndarray  # aligned input crop, H×W×3 uint8 at the generator's resolution
    reconstruction: np.ndarray  # G(ws) before the edit
    after: np.ndarray  # G(ws_edited)
    ws: torch.Tensor  # [num_ws, w_dim]
    ws_edited: torch.Tensor
    metrics: dict = field(default_factory=dict)
    #: vs the input face (editkit.edit_report): distance, similarity, same_person, distance_reconstruction, ...
    identity: dict = field(default_factory=dict)
    #: predicted age, p_male, expression of the input ("before"), "reconstruction" and "after" crops
    attributes: dict = field(default_factory=dict)


@dataclass
class EditResult:
    """The result of :meth:`Editor.edit`; ``image`` is the full photo with the edits rendered in.

    ``render``: 'transfer' or 'generated'; ``mask``: photo-size float32 mask in [0, 1] of where the
    photo may have changed (the change's own mask with transfer, the paste-back region with generated).
    """

    photo: np.ndarray
    image: np.ndarray
    faces: list[FaceEdit]
    edits: list[tuple[int, float]]
    source: Any = None  # editkit.photos.Photo (EXIF/ICC kept when saving)
    warnings: list[str] = field(default_factory=list)  # e.g. a strength outside the recommended range

    def report(self, labels: Sequence[str | None] = (), photo=None, outputs: Sequence = ()) -> dict:
        """JSON-able: the edits and, per face, identity distance and attributes before/after."""
        from .edit_report import edit_report

        return edit_report(self, labels, photo, outputs)
    render: str = "transfer"
    mask: np.ndarray | None = None

    def face_crops(self, max_size: int | None = 512) -> list[np.ndarray]:
        """The edited faces as aligned crops of the output photo, at their own resolution (transfer),
        or the generated crops (generated)."""
        if self.render == "generated":
            return [f.after for f in self.faces]
        from .render import face_crops

        return face_crops(self.image, [f.face for f in self.faces], max_size)

    def crops(self) -> np.ndarray:
        """Every edited face's aligned crop: one row of [before | after] pairs."""
        if self.render == "generated":
            return make_grid([[f.before, f.after] for f in self.faces])
        from .render import face_crops

        before = face_crops(self.photo, [f.face for f in self.faces])
        return make_grid([[b, a] for b, a in zip(before, self.face_crops())])

    def save(self, path: str | Path, crop_only: bool = False, crops: bool = False, overwrite: bool = False,
             inputs: Sequence[str | Path] = ()) -> list[Path]:
        """Write the edited photo (or only the edited aligned crops with ``crop_only``).

        ``crops``: also write ``<stem>.crops.png`` with the aligned faces before and after.
        Refuses to overwrite ``inputs`` or an existing file unless ``overwrite``. Atomic.
        """
        from .photos import save_image

        p = Path(path)
        written: list[Path] = []
        srcs = tuple(inputs) + ((self.source.path,) if getattr(self.source, "path", None) else ())
        check_writable(p, overwrite, srcs)
        crops_path = p.with_name(p.stem + ".crops.png")
        if crops:
            check_writable(crops_path, overwrite, srcs)
        if crop_only:
            faces = self.face_crops()
            arr = faces[0] if len(faces) == 1 else make_grid([faces])
            written.append(save_image(p, arr))
        else:
            written.append(save_image(p, self.image, like=self.source))
        if crops:
            written.append(save_image(crops_path, self.crops()))
        return written


@dataclass
class Traversal:
    """Frames of one or several directions across a strength range (rows = directions)."""

    rows: list[list[np.ndarray]]
    strengths: list[float]
    directions: list[int]
    labels: list[str]

    @property
    def frames(self) -> list[np.ndarray]:
        """The animation frames: with several directions, each frame shows them side by side."""
        if len(self.rows) == 1:
            return list(self.rows[0])
        return [make_grid([[row[i] for row in self.rows]], pad=2) for i in range(len(self.strengths))]

    def grid(self) -> np.ndarray:
        return make_grid(self.rows, row_labels=self.labels)

    def save(self, path: str | Path, duration_ms: int = 100, loop_back: bool = True, overwrite: bool = False,
             inputs: Sequence[str | Path] = ()) -> Path:
        """``.gif``/``.mp4``: an animation (forward then back with ``loop_back``); ``.png``/``.jpg``: the grid."""
        from .photos import save_image

        p = check_writable(path, overwrite, tuple(inputs))
        if p.suffix.lower() in (".gif", ".mp4"):
            frames = bounce(self.frames) if loop_back else self.frames
            return save_animation(p, frames, duration_ms)
        return save_image(p, self.grid())


@dataclass
class FaceInversion:
    index: int
    face: Any
    before: np.ndarray
    reconstruction: np.ndarray
    ws: torch.Tensor
    metrics: dict = field(default_factory=dict)
    generator: Any = None  # pti: this face's tuned generator copy (dropped after the photo)


class Editor:
    """Loads a generator, an optional encoder and a navigator once; edits photos with them.

    ``model``: a bundle folder, a registered bundle name, or None for the bundled model (a generator
    file or registered generator name also works, with ``navigator`` given separately).
    ``invert_options`` go to ``inversion.invert`` (e.g. ``steps``), ``align_options`` to
    ``inversion.align.align_faces`` (e.g. ``detector='cnn'``, ``upsample=2``). Official files instead: ``Editor(generator="ffhq.pkl", encoder="e4e_ffhq_encode.pt",
    navigator="nav.safetensors", alignment="ffhq")``. ``generator``/``encoder``/``navigator`` also
    override the bundle's files when given with ``model``. ``analyze_faces``: measure identity and
    attributes of every edited face with editkit.facenets (about 0.5 s per face on a CPU).
    ``render``: 'transfer' (default) or 'generated'; ``transfer``: :class:`editkit.render.TransferSettings`;
    ``pti``: :class:`inversion.pti.PTISettings` for ``method='pti'``. ``precision``: the generator's
    inference mode, 'auto' (bfloat16 where the CPU runs it natively, else float32), 'float32' (exact)
    or 'bf16' (see ``editkit.precision``).
    """

    def __init__(self, model: str | Path | None = None, *, generator: str | Path | None = None,
                 encoder: str | Path | None = None, navigator: str | Path | None = None,
                 navigator_name: str | None = None, alignment: str | dict | None = None,
                 device: str | torch.device = "cpu", method: str = "hybrid", invert_options: dict | None = None,
                 align_options: dict | None = None, analyze_faces: bool = True, render: str = "transfer",
                 transfer: Any = None, pti: Any = None, precision: str = "auto"):
        import editkit
        import inversion
        from inversion.align import get_template
        from navigator import load_navigator

        from . import registry
        from .precision import PRECISIONS, apply_precision

        if precision not in PRECISIONS:  # before any model is loaded
            raise UsageError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
        self.device = _device(device)
        self.bundle = None
        if generator is None and model is not None and registry.is_generator_spec(model):
            generator, model = model, None  # --model ffhq.pkl / a registered generator name
        if generator is None or model is not None:
            self.bundle = registry.resolve_bundle(model)
            gen_path = self.bundle.generator_path
            enc_path = self.bundle.encoder_path
            nav_path = self.bundle.navigator_path(navigator_name) if self.bundle.navigators else None
            align = self.bundle.alignment
            if generator is not None:  # replaces only the bundle's generator; its encoder and navigator stay
                gen_path = registry.resolve_weights(generator, "generator")
        else:
            gen_path, enc_path, nav_path, align = registry.resolve_weights(generator, "generator"), None, None, "ffhq"
        if encoder is not None:
            enc_path = registry.resolve_weights(encoder, "encoder")
        if navigator is not None:
            nav_path = registry.resolve_weights(navigator, "navigator")
        if alignment is not None:
            align = alignment
        self.paths = {"generator": gen_path, "encoder": enc_path, "navigator": nav_path}
        self.G = editkit.load_generator(gen_path, device=self.device).eval().requires_grad_(False)
        self.precision = apply_precision(self.G, precision)  # the mode used: 'float32' or 'bf16'
        self.encoder = None
        if enc_path is not None:
            self.encoder = inversion.load_encoder(enc_path).to(self.device).eval().requires_grad_(False)
            shape = (getattr(self.encoder, "num_ws", self.G.num_ws), getattr(self.encoder, "w_dim", self.G.w_dim))
            if shape != (self.G.num_ws, self.G.w_dim):
                raise UsageError(f"encoder is for W+ {shape[0]}x{shape[1]}, generator has {self.G.num_ws}x"
                                 f"{self.G.w_dim}", enc_path)
        self.navigator = None
        if nav_path is not None:
            self.navigator = load_navigator(nav_path, device=self.device).eval().requires_grad_(False)
            if (self.navigator.num_ws, self.navigator.w_dim) != (self.G.num_ws, self.G.w_dim):
                raise UsageError(f"navigator is for W+ {self.navigator.num_ws}x{self.navigator.w_dim}, generator has "
                                 f"{self.G.num_ws}x{self.G.w_dim}", nav_path)
        self.template = _template(align, get_template)
        if method not in METHODS:
            raise UsageError(f"unknown inversion method '{method}' (choose from {', '.join(METHODS)})")
        self.method = method
        self.analyze_faces = analyze_faces
        self.render = _render_mode(render)
        self.transfer = transfer
        self.pti = pti
        self.invert_options = dict(invert_options or {})
        # e.g. detector='cnn', upsample=2 (inversion.align.align_faces)
        self.align_options = {"min_score": DEFAULT_MIN_FACE_SCORE, **(align_options or {})}

    # ------------------------------------------------------------------------------------- directions
    def directions(self) -> list[Direction]:
        nav = self._nav()
        with torch.no_grad():
            att = nav.attention().cpu()
        from .label_promise import DirectionEffect

        effects = ((nav.info or {}).get("promise") or {}).get("effects", {})
        out = []
        for k in range(nav.num_directions):
            a = att[k]
            layers = [int(i) for i in torch.nonzero(a >= 0.5 * a.max()).flatten()]
            e = DirectionEffect(**effects[str(k)]) if str(k) in effects else None
            out.append(Direction(k, nav.labels[k], tuple(nav.strength_range[k]), layers,
                                 e.describe() if e else None, e.identity_distance if e else None))
        return out

    def resolve_attr(self, attr: int | str) -> int:
        """A direction index from an index (int or digits) or a label (case-insensitive, unique prefix)."""
        nav = self._nav()
        if isinstance(attr, (int, np.integer)) or (isinstance(attr, str) and attr.strip().lstrip("-").isdigit()):
            k = int(attr)
            if not 0 <= k < nav.num_directions:
                raise UsageError(f"direction {k} out of range 0..{nav.num_directions - 1}")
            return k
        name = str(attr).strip().lower()
        labels = [(i, (lab or "").lower()) for i, lab in enumerate(nav.labels)]
        exact = [i for i, lab in labels if lab == name or f"attr{i}" == name]
        if len(exact) == 1:
            return exact[0]
        prefix = [i for i, lab in labels if lab and lab.startswith(name)]
        if len(prefix) == 1:
            return prefix[0]
        known = ", ".join(f"{i}={lab}" for i, lab in labels if lab) or "none (use an index)"
        what = "ambiguous" if len(exact) + len(prefix) > 1 else "unknown"
        raise UsageError(f"{what} direction '{attr}' (labels: {known})")

    def check_strength(self, k: int, s: float, force: bool = False, what: str = "strength") -> str | None:
        """Refuse a non-finite strength, or one beyond the hard limit (``STRENGTH_HARD_FACTOR`` x the
        direction's recommended limit) unless ``force``; return a warning text when outside the recommended
        range (also issued as an :class:`~editkit.console.EditkitWarning`), else None."""
        nav = self._nav()
        if not np.isfinite(s):
            raise UsageError(f"{what} must be a finite number, got {s}")
        lo, hi = (float(v) for v in nav.strength_range[k])
        limit = STRENGTH_HARD_FACTOR * max(abs(lo), abs(hi))
        name = nav.labels[k] or f"attr{k}"
        if abs(s) > limit and not force:
            raise UsageError(f"{what} {s:g} for direction {k} ({name}) is beyond the hard limit +-{limit:g} "
                             f"({STRENGTH_HARD_FACTOR:g} x the recommended {lo:+g}..{hi:+g}); use --force "
                             "(force=True) to render it anyway")
        if not lo <= s <= hi:
            msg = (f"{what} {s:+g} for direction {k} ({name}) is outside its recommended range {lo:+g}..{hi:+g}; "
                   "expect artefacts")
            warnings.warn(EditkitWarning(msg), stacklevel=3)
            return msg
        return None

    def _edits(self, attr, strength, force: bool = False, notes: list | None = None) -> list[tuple[int, float]]:
        attrs = list(attr) if isinstance(attr, (list, tuple)) else [attr]
        strengths = list(strength) if isinstance(strength, (list, tuple)) else [strength]
        if len(strengths) == 1 and len(attrs) > 1:
            strengths = strengths * len(attrs)
        if len(attrs) != len(strengths) or not attrs:
            raise UsageError(f"{len(attrs)} directions but {len(strengths)} strengths (give one strength, or one per direction)")
        out = []
        for a, s in zip(attrs, strengths):
            try:
                s = float(s)
            except (TypeError, ValueError):
                raise UsageError(f"strength must be a number, got {s!r}") from None
            k = self.resolve_attr(a)
            msg = self.check_strength(k, s, force)
            if msg and notes is not None:
                notes.append(msg)
            out.append((k, s))
        return out

    # ------------------------------------------------------------------------------------- pipeline
    def _read(self, photo):
        from .photos import Photo, read_photo

        if isinstance(photo, Photo):
            return photo
        if isinstance(photo, (str, Path)):
            return read_photo(photo)
        arr = np.asarray(photo)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise UsageError(f"photo arrays must be H×W×3 uint8, got {arr.shape} {arr.dtype}")
        return Photo(array=arr)

    def align(self, photo) -> list:
        """Every face in the photo, aligned with the model's template at the generator's resolution."""
        from inversion.align import align_faces

        src = self._read(photo)
        try:
            faces = align_faces(src.array, template=self.template, size=self.G.resolution, **self.align_options)
        except NoFaceError as exc:
            if exc.path is None and src.path is not None:
                raise NoFaceError(str(exc), src.path) from None
            raise
        if not faces:
            raise NoFaceError("no face found", src.path)
        return faces

    def _select(self, faces: list, which, path=None) -> list[tuple[int, Any]]:
        if which is None or (isinstance(which, str) and which.strip().lower() == "all"):
            return list(enumerate(faces))
        if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
            idx = [which]
        elif isinstance(which, (list, tuple)) and which and all(
                isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in which):
            idx = list(which)
        else:
            raise UsageError(f"faces must be 'all', a face index (0, 1, ...) or a list of indices, got {which!r}")
        for i in idx:
            if not 0 <= int(i) < len(faces):
                raise UsageError(f"face {i} out of range: the photo has {len(faces)} face(s) (0..{len(faces) - 1})")
        return [(int(i), faces[int(i)]) for i in idx]

    def _crops_tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float()
        return x / 127.5 - 1.0

    def invert_crops(self, crops: Sequence[np.ndarray], method: str | None = None, **options) -> Any:
        """Aligned crops (H×W×3 uint8 at G's resolution) -> ``inversion.InversionResult`` (batched)."""
        import inversion

        method = method or self.method
        if method not in METHODS:
            raise UsageError(f"unknown inversion method '{method}' (choose from {', '.join(METHODS)})")
        if self.encoder is None:
            if method == "encoder":
                raise UsageError("this model has no encoder: use --method optimize (or pass --encoder FILE)")
            if method != "pti":  # pti then finds its pivot by optimisation
                method = "optimize"  # hybrid without an encoder starts from the average code
        opts = {**self.invert_options, **options}
        if method == "pti":
            opts.setdefault("pti", self.pti)
            opts.setdefault("identity", _identity_network(self.device))
        return inversion.invert(self.G, self._crops_tensor(crops), method=method, encoder=self.encoder, **opts)

    def synthesize(self, ws: torch.Tensor, generator=None) -> np.ndarray:
        """W+ codes -> uint8 faces, with this Editor's generator (or a per-face tuned one)."""
        G = generator if generator is not None else self.G
        with torch.no_grad():
            return self._checked(lambda: to_uint8(G.synthesis(ws.to(self.device), noise_mode="const")))

    def _checked(self, render):
        """Run a rendering step; a non-finite image is a one-line error naming the model files."""
        try:
            return render()
        except RenderError as exc:
            files = " / ".join(str(p) for p in (self.paths["generator"], self.paths["encoder"]) if p)
            raise RenderError(f"{exc}; nothing was written (check the weights: {files})") from None

    def invert(self, photo, faces="all", method: str | None = None, **options) -> list[FaceInversion]:
        """Align and invert the chosen faces; each result has the W+ code and its reconstruction.

        With ``method='pti'`` every face also gets its tuned generator copy (``FaceInversion.generator``),
        tuned one face at a time; ``offsets`` [K, L, D] are edits whose strength the tuning keeps.
        """
        src = self._read(photo)
        chosen = self._select(self.align(src), faces)
        method = method or self.method
        if method == "pti":  # one face at a time: only one generator copy is alive per face
            out = []
            for i, f in chosen:
                inv = self.invert_crops([f.image], method, **options)
                m = _split_metrics(getattr(inv, "metrics", {}) or {}, 1)[0]
                m["identity_loss"] = (inv.metrics or {}).get("identity_loss", "missing")
                out.append(FaceInversion(i, f, f.image, to_uint8(inv.images)[0], inv.ws[0].detach().cpu(), m,
                                         inv.generators[0]))
            return out
        inv = self.invert_crops([f.image for _, f in chosen], method, **options)
        ws = inv.ws.detach()
        recon = (self._checked(lambda: to_uint8(inv.images)) if getattr(inv, "images", None) is not None
                 else self.synthesize(ws))
        metrics = _split_metrics(getattr(inv, "metrics", {}) or {}, len(chosen))
        return [FaceInversion(i, f, f.image, recon[j], ws[j].cpu(), metrics[j]) for j, (i, f) in enumerate(chosen)]

    def edit(self, photo, attr, strength, faces="all", method: str | None = None, render: str | None = None,
             force: bool = False, inverted: Sequence[FaceInversion] | None = None, **options) -> EditResult:
        """Edit every chosen face of ``photo`` with one or several (direction, strength) pairs.

        ``photo``: a path, an H×W×3 uint8 array or an ``editkit.photos.Photo``; ``attr``: index, label or a
        list of them; ``strength``: a number or one per direction; ``faces``: 'all', an index or indices;
        ``render``: 'transfer' or 'generated' (default: the Editor's).
        A strength outside a direction's recommended range warns; beyond the hard limit it needs ``force``.
        ``inverted``: the faces' :meth:`invert` results for this photo, reused instead of inverting again
        (``faces``/``method``/``options`` are then ignored); the result is the same as without it.
        """
        from .render import render_faces

        mode = _render_mode(render or self.render)
        notes: list[str] = []
        edits = self._edits(attr, strength, force, notes)
        src = self._read(photo)
        nav = self._nav()
        reused = inverted is not None
        if reused:
            inverted = list(inverted)
        else:
            offset = sum(s * nav.offsets()[k].detach() for k, s in edits)
            if (method or self.method) == "pti":
                options.setdefault("offsets", offset[None].to(self.device))
            inverted = self.invert(src, faces, method, **options)
        out_faces = []
        for fi in inverted:  # the reconstruction and the edit come from one batch, so strength 0 changes nothing
            w = fi.ws[None].to(self.device)
            with torch.no_grad():
                w_e = w
                for k, s in edits:
                    w_e = nav.edit(w_e, k, s)
            rec, after = self.synthesize(torch.cat([w, w_e]), fi.generator)
            out_faces.append(FaceEdit(fi.index, fi.face, fi.before, rec, after, fi.ws, w_e[0].cpu(), fi.metrics))
            if not reused:
                fi.generator = None  # a per-face tuned copy (pti) is dropped as soon as its face is rendered
        image, mask = self._checked(lambda: render_faces(
            src.array, [(f.face, f.reconstruction, f.after) for f in out_faces], mode, self.transfer))
        res = EditResult(photo=src.array, image=np.asarray(image, dtype=np.uint8), faces=out_faces, edits=edits,
                         source=src, warnings=notes, render=mode, mask=mask)
        if self.analyze_faces:
            from .edit_report import annotate_faces
            from .render import face_crops

            annotate_faces(out_faces, None if mode == "generated" else
                           list(zip(face_crops(src.array, [f.face for f in out_faces], 256),
                                    face_crops(res.image, [f.face for f in out_faces], 256))))
        return res

    def traverse(self, photo, attr, strength: float | tuple[float, float] | None = None, frames: int = 24,
                 face: int = 0, method: str | None = None, ws: torch.Tensor | None = None, force: bool = False,
                 render: str | None = None, max_size: int = 384, inverted: FaceInversion | None = None,
                 **options) -> Traversal:
        """Frames of the chosen face as direction(s) ``attr`` move across a strength range.

        ``strength``: s for [-s, +s], a (lo, hi) pair, or None for each direction's recommended range.
        ``ws`` ([num_ws, w_dim]) skips the photo and traverses that code instead (generated frames).
        ``inverted``: the face's :meth:`invert` result for this photo, reused instead of inverting again.
        With ``render='transfer'`` (default) each frame is the photo's own face, aligned at its own
        resolution (at most ``max_size`` px), with the change of that strength transferred onto it.
        """
        if frames < 2:
            raise UsageError(f"--frames must be at least 2, got {frames}")
        mode = _render_mode(render or self.render)
        attrs = list(attr) if isinstance(attr, (list, tuple)) else [attr]
        ks = [self.resolve_attr(a) for a in attrs]
        nav = self._nav()
        for k in ks:  # checked before any inversion work
            lo, hi = _range(strength, nav.strength_range[k])
            if strength is not None and not (lo < hi):
                raise UsageError(f"the traversal range must be positive (-R..+R with R > 0), got {strength!r}")
            for end in (lo, hi):
                self.check_strength(k, end, force, what="range end")
        G, fi, src = self.G, None, None
        if ws is None:
            src = self._read(photo)
            if inverted is not None:
                fi = inverted
            else:
                if (method or self.method) == "pti":
                    ends = [s * nav.offsets()[k].detach() for k in ks for s in _range(strength, nav.strength_range[k])]
                    options.setdefault("offsets", torch.stack(ends).to(self.device))
                fi = self.invert(src, [face], method, **options)[0]
            ws, G = fi.ws, (fi.generator if fi.generator is not None else self.G)
        ws = ws.to(self.device)
        from navigator.traverse import traversal_frames

        rows, labels = [], []
        recon = self.synthesize(ws[None], G)[0] if fi is not None and mode == "transfer" else None
        for k in ks:
            rng = _range(strength, nav.strength_range[k])
            row = list(self._checked(lambda: traversal_frames(G, nav, ws, k, rng, frames)))
            if recon is not None:
                from .render import face_crops, render_faces

                row = [face_crops(render_faces(src.array, [(fi.face, recon, f)], "transfer", self.transfer)[0],
                                  [fi.face], max_size)[0] for f in row]
            rows.append(row)
            labels.append(nav.labels[k] or f"attr{k}")
        lo, hi = _range(strength, nav.strength_range[ks[0]])
        return Traversal(rows=rows, strengths=[float(v) for v in np.linspace(lo, hi, frames)], directions=ks, labels=labels)

    def preview(self, samples: int = 3, strength: float | None = None, seed: int = 0,
                directions: Sequence[int] | None = None, truncation_psi: float = 0.7) -> np.ndarray:
        """A grid: one row per direction, for each random sample the image at -s, 0, +s."""
        nav = self._nav()
        ks = list(range(nav.num_directions)) if directions is None else list(directions)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(samples, self.G.z_dim, generator=g).to(self.device)
        with torch.no_grad():
            ws = self.G.mapping(z, truncation_psi=truncation_psi)
        from navigator.traverse import traversal_frames

        rows = []
        for k in ks:
            rng = _range(strength, nav.strength_range[k])
            rows.append([img for w in ws for img in traversal_frames(self.G, nav, w, k, rng, 3)])
        return make_grid(rows, row_labels=[nav.labels[k] or f"attr{k}" for k in ks])

    def _nav(self):
        if self.navigator is None:
            raise UsageError("this model has no navigator: pass one (--navigator FILE) or train one with "
                             "`editkit train navigator`")
        return self.navigator


def _range(strength, default: tuple[float, float]) -> tuple[float, float]:
    if strength is None:
        return float(default[0]), float(default[1])
    try:
        if isinstance(strength, (tuple, list)):
            if len(strength) != 2:
                raise UsageError(f"a strength range is two numbers, got {strength!r}")
            lo, hi = float(strength[0]), float(strength[1])
        else:
            s = abs(float(strength))
            lo, hi = -s, s
    except (TypeError, ValueError):
        raise UsageError(f"a strength range must be numbers, got {strength!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise UsageError(f"the strength range must be finite, got {strength!r}")
    return lo, hi


def _render_mode(mode: str) -> str:
    if mode not in RENDER_MODES:
        raise UsageError(f"unknown render mode '{mode}' (choose from {', '.join(RENDER_MODES)})")
    return mode


def _identity_network(device):
    """PTI's identity term: face-api's recognition descriptor (``editkit.facenets``) of whole aligned crops."""
    from . import facenets

    facenets.load("recognition", device=device)  # fails here, clearly, if its weights are missing

    def identity(images: torch.Tensor) -> torch.Tensor:
        return facenets.analyze_tensor(images, networks=("recognition",)).descriptor

    return identity


def _split_metrics(metrics: dict, n: int) -> list[dict]:
    """Per-face metric dicts from the inversion's (per-face lists/tensors or scalars)."""
    out: list[dict] = [{} for _ in range(n)]
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().flatten().tolist() if value.numel() > 1 else float(value)
        if isinstance(value, (list, tuple)) and len(value) == n:
            for j in range(n):
                out[j][key] = value[j]
        elif isinstance(value, (int, float)):
            for j in range(n):
                out[j][key] = value
    return out


def _template(align, get_template):
    from inversion.align import AlignmentTemplate

    if isinstance(align, dict):
        try:
            return AlignmentTemplate(**align)
        except TypeError as exc:
            raise UsageError(f"bad alignment template parameters in the bundle ({exc})") from None
    return get_template(align)


def _device(device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"unknown device {str(device)!r} (use cpu, cuda, cuda:N or auto)") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unsupported device {str(device)!r} (use cpu, cuda, cuda:N or auto)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA was requested but is not available here (use --device cpu)")
    return dev
