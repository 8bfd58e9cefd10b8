"""ContraFeat number for number with the authors' code: every item of the shared golden set
(``tests/fixtures/golden/contrafeat``, made by calling the authors' own functions; see its README).

This is the project's version of the set's ``check_editkit.py``: the same functions are called with
the same inputs; a tensor matches when ||port − ref|| / ||ref|| <= 1e-5, integers and index lists
must be equal. The one change: de-duplication passes ``start_from_last`` (the authors' two rules).
"""
from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from editkit.networks import Generator
from navigator import losses as P
from navigator import metrics as Mx
from navigator.bases import _covariance_pca, sefa, sefa_directions
from navigator.model import Navigator
from navigator import train as T
from navigator.traverse import layer_similarity, order_by_magnitude, remove_near_duplicates

GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "contrafeat"
TOL = 1e-5
DT = torch.float32


def load(name: str) -> dict:
    return torch.load(GOLDEN / name, weights_only=True)


def rel_err(port, ref) -> float:
    port, ref = torch.as_tensor(port).detach().double(), torch.as_tensor(ref).detach().double()
    return float((port - ref).norm() / ref.norm().clamp_min(1e-300))


def assert_close(port, ref, what: str, tol: float = TOL) -> None:
    if isinstance(port, (list, tuple)):
        for i, (p, r) in enumerate(zip(port, ref, strict=True)):
            assert_close(p, r, f"{what}[{i}]", tol)
        return
    e = rel_err(port, ref)
    assert e <= tol, f"{what}: relative error {e:.2e} > {tol:.0e}"


def leaf(x: torch.Tensor, dtype=DT) -> torch.Tensor:
    return x.detach().clone().to(dtype).requires_grad_(True)


# 1. navigator ---------------------------------------------------------------------------------

def golden_navigator(nv: dict, dtype=DT) -> Navigator:
    nav = Navigator(nv["K"], nv["L"], nv["w_dim"], direction_mode="pca", basis=nv["V"],
                    num_components=nv["N"]).to(dtype)
    with torch.no_grad():
        nav.attention_logits.copy_(nv["attention_logits"])
        nav.coefficients.copy_(nv["coefficients"])
    return nav


def test_navigator():
    nv = load("navigator.pt")
    nav = golden_navigator(nv)
    assert_close(nav.attention(), nv["attention"], "attention")
    assert_close(nav.directions(), nv["directions"], "directions")
    assert_close(nav.offsets(), nv["offsets"], "offsets")


# 2. binary loss -------------------------------------------------------------------------------

def test_binary_loss():
    bi = load("binary_loss.pt")
    feats = [leaf(f) for f in bi["features"]]
    loss = P.binary_loss(feats)
    loss.backward()
    assert_close(loss, bi["loss"], "binary loss")
    assert_close([f.grad for f in feats], bi["grad_features"], "d loss / d features")


# 3. prototype loss ----------------------------------------------------------------------------

def test_prototype_loss_value_and_gradients():
    pt = load("prototype_loss.pt")
    plus, minus = [leaf(x) for x in pt["plus"]], [leaf(x) for x in pt["minus"]]
    protos = [leaf(x) for x in pt["prototypes"]]
    loss = P.prototype_loss([torch.cat([p, m]) for p, m in zip(plus, minus)], protos, pt["q"])
    loss.backward()
    assert rel_err(loss, pt["diagnostic_loss_if_features_normalised_before_differencing"]) > 1e-3, \
        "the variation is being normalised before differencing"
    assert_close(loss, pt["loss"], "prototype loss")
    assert_close([x.grad for x in plus], pt["grad_plus"], "d loss / d plus")
    assert_close([x.grad for x in minus], pt["grad_minus"], "d loss / d minus")
    assert_close([x.grad for x in protos], pt["grad_prototypes"], "d loss / d prototype maps")


def test_prototype_similarity_matrix():
    pt = load("prototype_loss.pt")
    with torch.no_grad():
        S = P.similarity_matrix([p.to(DT) - m.to(DT) for p, m in zip(pt["plus"], pt["minus"])],
                                [x.to(DT) for x in pt["prototypes"]])
    assert_close(S, pt["similarity"], "similarity matrix")


def test_prototype_gradient_finite_where_feature_maps_are_zero():
    """Positions where a map is zero across channels (dead ReLUs, in plus and minus alike) must not
    blow the gradient up (normalising before differencing gave ~1e7 there)."""
    g = torch.Generator().manual_seed(0)
    b, K = 6, 4
    plus = torch.relu(torch.randn(b, 16, 9, 9, generator=g))
    minus = torch.relu(plus + 0.3 * torch.randn(b, 16, 9, 9, generator=g))
    dead = torch.rand(b, 1, 9, 9, generator=g) < 0.3
    plus, minus = plus.masked_fill(dead, 0.0), minus.masked_fill(dead, 0.0)
    minus[0] = plus[0]                          # one sample with no variation at all
    plus[1] = 0.0                               # one sample whose plus map is zero everywhere
    plus, minus = leaf(plus), leaf(minus)
    protos = leaf(torch.relu(torch.randn(K, 16, 5, 5, generator=g)).masked_fill(
        torch.rand(K, 1, 5, 5, generator=g) < 0.3, 0.0))
    loss = P.prototype_loss([torch.cat([plus, minus])], [protos], torch.tensor([0, 1, 2, 3, 0, 1]))
    loss.backward()
    for name, t in (("plus", plus), ("minus", minus), ("prototypes", protos)):
        assert torch.isfinite(t.grad).all(), name
        assert t.grad.abs().max() < 10.0, f"{name}: gradient {float(t.grad.abs().max()):.3g}"
    assert torch.equal(minus.grad, -plus.grad)


# 4. diversity ---------------------------------------------------------------------------------

def test_diversity_loss():
    dv = load("diversity_loss.pt")
    D = leaf(dv["offsets"])
    loss = P.diversity_loss(D)
    loss.backward()
    assert_close(loss, dv["loss"], "diversity loss")
    assert_close(D.grad, dv["grad_offsets"], "d loss / d offsets")
    nav = golden_navigator(load("navigator.pt"))
    P.diversity_loss(nav.offsets()).backward()
    assert_close(nav.attention_logits.grad, dv["grad_attention_logits"], "d loss / d attention logits")
    assert_close(nav.coefficients.grad, dv["grad_coefficients"], "d loss / d coefficients")


# 5. SeFa and GANSpace -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sefa_case():
    sf = load("sefa.pt")
    info = sf["generator"]
    chans = {int(k): v for k, v in info["channels"].items()}
    gen = Generator(z_dim=info["w_dim"], w_dim=info["w_dim"], resolution=info["resolution"], channels=chans)
    sd = gen.state_dict()
    for n, w in zip(sf["names"], sf["weights"]):
        sd[f"synthesis.{n}.weight"] = w
    gen.load_state_dict(sd)
    return sf, gen


def _aligned(v_cols: torch.Tensor, ref_rows: torch.Tensor) -> torch.Tensor:
    v = v_cols[:, :ref_rows.shape[0]].T.double()
    return v * torch.sign((v * ref_rows).sum(1))[:, None]


def test_sefa_affine_selection(sefa_case):
    """The generator's SeFa affines are the authors' selection: every conv affine and the last toRGB."""
    sf, gen = sefa_case
    sel = [sf["weights"][sf["names"].index(n)] for n in sf["selected_names"]]
    got = gen.affine_weights()
    assert len(got) == len(sel)
    for g, s in zip(got, sel):       # effective weights = raw weight × a constant gain
        assert_close(g / g.norm(), s / s.norm(), "affine weight")


def test_sefa_basis(sefa_case):
    sf, gen = sefa_case
    n = sf["n_stable_leading"]
    ref_v, ref_s = sf["eigenvectors_sorted"][:n], sf["eigenvalues_sorted"][:n]
    vec, val = sefa_directions(gen.affine_weights())
    assert_close(val[:n], ref_s, "eigenvalues")
    assert_close(_aligned(vec, ref_v), ref_v, "eigenvectors")


def test_sefa_baseline_directions(sefa_case):
    sf, gen = sefa_case
    u = sefa(gen, sf["navigator_K"]).directions().double()
    ref = sf["navigator_directions"].double()
    assert_close(u * torch.sign((u * ref).sum(1, keepdim=True)), ref, "sefa(G, K) directions")


def test_ganspace_basis():
    gs = load("ganspace.pt")
    w = gs["w"]
    mean, comps, var = _covariance_pca(w.sum(0), w.T @ w, w.shape[0])
    ref = gs["v_mat_sign_normalised"]
    assert_close(mean, gs["w_avg"], "mean")
    assert_close(var, gs["s_values_normed"] ** 2, "variances")
    assert_close(comps.double() * torch.sign((comps.double() * ref).sum(0)), ref, "components")


# 6. metrics, de-duplication, ordering ---------------------------------------------------------

def test_metrics():
    me = load("metrics.pt")
    r = me["r"]
    assert_close(Mx.normalized_responses(r), me["scores_normed"], "normalised matrix")
    assert_close(Mx.disentanglement_score(r), me["score"], "score (default: the first 30 rows)")
    assert Mx.discovered_attributes(r) == me["n_discovered"]
    assert Mx.discovered_mask(r).tolist() == [bool(x) for x in me["attr_discovered"]]
    for lim, v in me["per_limit"].items():
        assert_close(Mx.disentanglement_score(r, int(lim)), v["score"], f"score, limit {lim}")
        assert Mx.discovered_attributes(r, int(lim)) == v["n_discovered"], f"n_discovered, limit {lim}"


def test_metrics_first_30_by_default():
    me = load("metrics.pt")
    r = torch.cat([me["r"], me["r"][:5].flip(1) * 3])      # 35 directions: the last 5 must not count
    assert Mx.disentanglement_score(r) == pytest.approx(float(me["score"]), rel=1e-12)
    assert Mx.discovered_attributes(r) == me["n_discovered"]
    assert Mx.discovered_attributes(r, top=None) >= me["n_discovered"]


def test_metrics_ties():
    t = load("metrics.pt")["ties"]
    assert_close(Mx.disentanglement_score(t["r"]), t["score"], "ties: score")
    assert Mx.discovered_attributes(t["r"]) == t["n_discovered"]
    assert Mx.discovered_mask(t["r"]).tolist() == [bool(x) for x in t["attr_discovered"]]


def test_metrics_every_tied_attribute_counts():
    r = torch.tensor([[2.0, -2.0, 1.0, 0.0], [0.5, 0.1, 0.0, 0.1]])
    assert Mx.discovered_attributes(r) == 2          # row 0: attributes 0 and 1 tie; row 1: attribute 0
    assert Mx.disentanglement_score(r[:1]) == 0.0


def test_dedup_similarity():
    dd = load("dedup.pt")
    diffs = [e.double() - m.double() for e, m in zip(dd["features_last"], dd["features_mid"])]
    K = dd["K"]
    sims = torch.stack([torch.stack([layer_similarity(d[i:i + 1].expand(K, -1, -1, -1), d)
                                     for i in range(K)]) for d in diffs])
    assert_close(sims, dd["similarity_per_layer"], "pair similarity per layer")


@pytest.mark.parametrize("key", list(load("dedup.pt")["removed"]))
def test_dedup_removal(key):
    dd = load("dedup.pt")
    thresh = float(key.split(",")[0].split("=")[1])
    sfl = key.split("start_from_last=")[1] == "True"
    kept = remove_near_duplicates(dd["similarity_sum"], threshold=thresh, start_from_last=sfl)
    assert sorted(set(range(dd["K"])) - set(kept)) == sorted(dd["removed"][key])


def test_percept_order():
    dd = load("dedup.pt")
    assert order_by_magnitude(dd["percept_distance_sum"]) == list(dd["percept_order"])


# 7. style mixing ------------------------------------------------------------------------------

@pytest.mark.parametrize("n_colors", ["1", "2", "3", "5", "16"])
def test_style_mixing(n_colors):
    sm = load("style_mixing.pt")
    L, case = sm["L"], sm["cases"][n_colors]
    fakeG = types.SimpleNamespace(num_ws=L, mapping=lambda z, truncation_psi=1.0: z[:, None, :].repeat(1, L, 1))
    ws = T.style_mixed_codes(fakeG, case["z"].permute(1, 0, 2))
    assert torch.equal(ws, case["ws"].to(ws.dtype))
    assert T.color_cuts(L, int(n_colors)) == list(case["cuts"])


# 8. one whole training step -------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["binary", "prototype"])
def test_training_step(variant):
    ts = load("training_step.pt")
    navt = Navigator(ts["K"], ts["L"], ts["w_dim"], direction_mode="pca", basis=ts["V"],
                     num_components=ts["N"]).double()
    with torch.no_grad():
        navt.attention_logits.copy_(ts["attention_logits"])
        navt.coefficients.copy_(ts["coefficients"])
    img_shape = ts["img_shape"]

    def synth(codes):
        return torch.tanh(codes.float().double()).reshape(codes.shape[0], *img_shape)

    def sensor(img):
        f1 = F.relu(F.conv2d(img, ts["W1"], ts["b1"], padding=1))
        return [f1, F.relu(F.conv2d(F.avg_pool2d(f1, 2), ts["W2"], ts["b2"], padding=1))]

    rec = ts[variant]
    off = navt.offsets()
    proto = None
    if variant == "binary":
        codes = P.binary_codes(rec["ws_orig"], off, {k: rec[k] for k in ("p", "n", "s", "t")})
        ref_codes = rec["codes"]
        main = P.binary_loss(sensor(synth(codes)))
    else:
        codes = P.prototype_codes(rec["ws_orig"], off, {"q": rec["q"], "s": rec["s"]})
        h = codes.shape[0] // 2
        ref_codes = torch.cat([rec["codes"][h:], rec["codes"][:h]])    # authors: [minus; plus]
        proto = ts["prototype_init"].detach().clone().requires_grad_(True)
        pf = sensor(P.prototype_images(proto, rec["mirror"]))
        main = P.prototype_loss(sensor(synth(codes)), pf, rec["q"])
    total = main + rec["div_lamb"] * P.diversity_loss(off)
    total.backward()
    assert_close(codes, ref_codes, "codes")
    assert_close(total, rec["loss_all"], "loss_all")
    assert_close(navt.attention_logits.grad, rec["grad_attention_logits"], "d loss / d attention logits")
    assert_close(navt.coefficients.grad, rec["grad_coefficients"], "d loss / d coefficients")
    if proto is not None:
        assert_close(proto.grad, rec["grad_prototype"], "d loss / d prototype images")
