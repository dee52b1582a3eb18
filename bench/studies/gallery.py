"""Gallery: what each pipeline sees. PNG panels written to a folder and logged as a tracked study run.

* ``hog.png`` — HOG glyphs (``skimage.feature.hog(visualize=True)``, display only; the pipelines use OpenCV).
* ``sift_keypoints.png`` — OpenCV SIFT keypoints (images upscaled so tiny digits get any).
* ``bovw_words.png`` — a small visual vocabulary (dense SIFT, k-means): for the most frequent words, the
  image patches closest to each word's centre.
* ``color_histograms.png`` — mean per-class intensity / colour histograms (``cv2.calcHist``).
* ``cnn_filters_<p>.png`` / ``cnn_feature_maps_<p>.png`` — first convolution's filters and its responses.
* ``gradcam_<p>.png`` — Grad-CAM on the last convolution (transfer model when given, else a scratch CNN).
* ``mistakes_<p>.png`` — each pipeline's most confident mistakes on the test set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from bench.report.plots import figure_png, pyplot

STUDY = "gallery"


def _show(ax: Any, img: np.ndarray, title: str | None = None, cmap: str | None = None) -> None:
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap=cmap or ("gray" if img.ndim == 2 else None), vmin=0 if img.dtype == np.uint8 else None,
              vmax=255 if img.dtype == np.uint8 else None)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def _gray(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.shape[2] == 3 else img[..., 0]


def _upscale(img: np.ndarray, target: int = 128) -> np.ndarray:
    import cv2

    f = max(1, int(round(target / max(img.shape[:2]))))
    out = cv2.resize(img, (img.shape[1] * f, img.shape[0] * f), interpolation=cv2.INTER_CUBIC)
    return out if out.ndim == img.ndim else out[..., None]


def pick_examples(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` examples cycling through the classes (first occurrence of each, then the next…)."""
    order: list[int] = []
    per = {c: list(np.flatnonzero(y == c)) for c in np.unique(y)}
    while len(order) < min(n, len(y)):
        for c in per:
            if per[c] and len(order) < n:
                order.append(int(per[c].pop(0)))
    return np.array(order, dtype=int)


# -- classical features ------------------------------------------------------------------------------------
def hog_panel(X: np.ndarray) -> bytes:
    from skimage.feature import hog

    plt = pyplot()
    fig, axes = plt.subplots(2, len(X), figsize=(1.3 * len(X), 2.8), squeeze=False)
    for i, img in enumerate(X):
        g = _gray(_upscale(img, 32) if max(img.shape[:2]) < 16 else img)
        cell = max(2, min(g.shape) // 7)
        _, vis = hog(g, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), visualize=True)
        _show(axes[0, i], img)
        _show(axes[1, i], vis.astype(np.float32), cmap="magma")
    axes[0, 0].set_ylabel("image", fontsize=7)
    axes[1, 0].set_ylabel("HOG", fontsize=7)
    fig.suptitle("HOG glyphs (skimage visualisation, cell = side/7)", fontsize=8)
    return figure_png(fig, dpi=100)


def sift_panel(X: np.ndarray) -> tuple[bytes, list[int]]:
    import cv2

    plt = pyplot()
    sift = cv2.SIFT_create()
    fig, axes = plt.subplots(1, len(X), figsize=(1.6 * len(X), 1.9), squeeze=False)
    counts = []
    for i, img in enumerate(X):
        big = _upscale(img, 128)
        g = _gray(big)
        kps = sift.detect(g, None)
        counts.append(len(kps))
        rgb = cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) if big.shape[2] == 1 else np.ascontiguousarray(big)
        drawn = cv2.drawKeypoints(rgb, kps, None, color=(255, 60, 0), flags=cv2.DRAW_MATCHES_FLAGS_DRAW_RICH_KEYPOINTS)
        _show(axes[0, i], drawn, f"{len(kps)} kp")
    fig.suptitle("SIFT keypoints (OpenCV, image upscaled to ~128 px)", fontsize=8)
    return figure_png(fig, dpi=100), counts


def bovw_panel(X: np.ndarray, n_words: int = 24, show_words: int = 8, per_word: int = 6, seed: int = 0) -> bytes:
    """Dense SIFT on a grid of the (upscaled) images, k-means vocabulary, nearest patches per frequent word."""
    import cv2
    from sklearn.cluster import MiniBatchKMeans

    sift = cv2.SIFT_create()
    descs, patches = [], []
    for img in X:
        big = _gray(_upscale(img, 64))
        size = max(8, big.shape[0] // 4)
        step = max(4, size // 2)
        kps = [cv2.KeyPoint(float(x), float(y), float(size))
               for y in range(size // 2, big.shape[0] - size // 2 + 1, step)
               for x in range(size // 2, big.shape[1] - size // 2 + 1, step)]
        kps, d = sift.compute(big, kps)
        if d is None:
            continue
        for kp, row in zip(kps, d):
            x0, y0 = int(kp.pt[0]) - size // 2, int(kp.pt[1]) - size // 2
            p = big[max(0, y0):y0 + size, max(0, x0):x0 + size]
            if p.shape == (size, size) and p.std() > 12:  # flat background patches make uninformative words
                descs.append(row)
                patches.append(cv2.resize(p, (24, 24), interpolation=cv2.INTER_AREA))
    D = np.asarray(descs, np.float32)
    k = max(2, min(n_words, len(D) // 4))
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=1024).fit(D)
    labels = km.labels_
    dist = np.linalg.norm(D - km.cluster_centers_[labels], axis=1)
    freq = np.bincount(labels, minlength=k)
    words = np.argsort(-freq)[:show_words]
    plt = pyplot()
    fig, axes = plt.subplots(len(words), per_word, figsize=(0.8 * per_word, 0.85 * len(words)), squeeze=False)
    for r, w in enumerate(words):
        members = np.flatnonzero(labels == w)
        members = members[np.argsort(dist[members])][:per_word]
        for c in range(per_word):
            ax = axes[r, c]
            if c < len(members):
                _show(ax, patches[members[c]])
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(f"w{w}\n{freq[w]}", fontsize=6, rotation=0, labelpad=14)
    fig.suptitle(f"BoVW: top {show_words} of {k} words (dense SIFT, non-flat patches, k-means)\n"
                 "patches nearest each word centre",
                 fontsize=7)
    return figure_png(fig, dpi=100)


def color_hist_panel(X: np.ndarray, y: np.ndarray, class_names: list[str], bins: int = 32) -> bytes:
    import cv2

    plt = pyplot()
    classes = np.unique(y)[:10]
    fig, axes = plt.subplots(1, len(classes), figsize=(1.5 * len(classes), 1.8), squeeze=False, sharey=True)
    chans = ("r", "g", "b") if X.shape[3] == 3 else ("k",)
    for i, c in enumerate(classes):
        imgs = X[y == c][:300]
        for ch, color in enumerate(chans):
            h = np.mean([cv2.calcHist([np.ascontiguousarray(im[..., ch])], [0], None, [bins], [0, 256]).ravel()
                         / (im.shape[0] * im.shape[1]) for im in imgs], axis=0)
            axes[0, i].plot(np.arange(bins) * (256 / bins), h, color=color, linewidth=1)
        axes[0, i].set_yscale("log")
        axes[0, i].set_title(class_names[c] if c < len(class_names) else str(c), fontsize=7)
        axes[0, i].tick_params(labelsize=5)
    fig.suptitle(f"mean colour histograms per class (cv2.calcHist, {bins} bins, log y)", fontsize=8)
    fig.tight_layout()
    return figure_png(fig, dpi=100)


# -- networks ----------------------------------------------------------------------------------------------
def frozen_linear_model(est: Any) -> tuple[Any, Callable, Any] | None:
    """(model, prep, device) for a frozen-feature transfer pipeline whose classifier is linear: the ImageNet
    backbone followed by one ``nn.Linear`` holding the fitted (standardiser +) linear model, so Grad-CAM and
    the filter panels see the whole pipeline. None for other pipelines (kNN and kernel SVMs are not linear).
    """
    import torch
    from sklearn.preprocessing import StandardScaler

    from pipelines.transfer import BackboneFeatures, ImagenetPrep, load_embedder

    feats, clf = getattr(est, "features_", None), getattr(est, "classifier_", None)
    if not isinstance(feats, BackboneFeatures) or clf is None:
        return None
    steps = [s for _, s in clf.steps] if hasattr(clf, "steps") else [clf]
    if not hasattr(steps[-1], "coef_") or not all(isinstance(s, StandardScaler) for s in steps[:-1]):
        return None
    W = np.asarray(steps[-1].coef_, np.float64)
    b = np.broadcast_to(np.asarray(steps[-1].intercept_, np.float64), W.shape[:1]).copy()
    for sc in reversed(steps[:-1]):  # W·(f − m)/s + b  =  (W/s)·f + (b − (W/s)·m)
        W = W / sc.scale_ if sc.scale_ is not None else W
        b = b - W @ (sc.mean_ if sc.mean_ is not None else 0.0)
    if W.shape[0] == 1:  # binary: the decision function is the logit of the second class
        W, b = np.vstack([np.zeros_like(W), W]), np.concatenate([[0.0], b])
    backbone, dim = load_embedder(feats.backbone, feats.weights, feats.multiscale)
    head = torch.nn.Linear(dim, W.shape[0])
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(W).float())
        head.bias.copy_(torch.from_numpy(b).float())
    dev = torch.device("cpu")
    return torch.nn.Sequential(backbone, head).eval(), ImagenetPrep.for_backbone(feats.backbone, feats.resolution, dev), dev


def _net_parts(est: Any) -> tuple[Any, Callable, Any] | None:
    """(model, prep, device) of a network estimator, or None (e.g. a classical pipeline)."""
    model = getattr(est, "model_", None)
    if model is None:
        return frozen_linear_model(est)
    prep = getattr(est, "prep_", None)
    if prep is None:
        return None
    return model, prep, getattr(est, "device_", None)


def _to_input(est_parts: tuple, X: np.ndarray):
    import torch

    model, prep, dev = est_parts
    x = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    return prep(x.to(dev) if dev is not None else x)


def first_conv(model: Any) -> Any:
    import torch

    return next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)


def last_conv(model: Any) -> Any:
    import torch

    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    return convs[-1] if convs else None


def filters_panel(est: Any, name: str) -> bytes | None:
    parts = _net_parts(est)
    conv = first_conv(parts[0]) if parts else None
    if conv is None:
        return None
    W = conv.weight.detach().float().cpu().numpy()[:32]  # (out, in, k, k)
    plt = pyplot()
    cols = 8
    rows = int(np.ceil(len(W) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.7, rows * 0.75), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(W):
            w = W[i].transpose(1, 2, 0)
            w = (w - w.min()) / max(float(w.max() - w.min()), 1e-8)
            ax.imshow(w if w.shape[2] == 3 else w.mean(2), cmap=None if w.shape[2] == 3 else "RdBu_r",
                      interpolation="nearest")
    fig.suptitle(f"{name}: first-layer filters {tuple(conv.weight.shape)}", fontsize=7)
    return figure_png(fig, dpi=100)


def feature_maps_panel(est: Any, name: str, img: np.ndarray, n_maps: int = 16) -> bytes | None:
    import torch

    parts = _net_parts(est)
    conv = first_conv(parts[0]) if parts else None
    if conv is None:
        return None
    model = parts[0]
    out: dict[str, Any] = {}
    h = conv.register_forward_hook(lambda m, i, o: out.__setitem__("a", o.detach().float().cpu()))
    try:
        model.eval()
        with torch.no_grad():
            model(_to_input(parts, img[None]))
    finally:
        h.remove()
    A = out["a"][0].numpy()[:n_maps]
    plt = pyplot()
    cols = 8
    rows = 1 + int(np.ceil(len(A) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.85), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    _show(axes[0, 0], img, "input")
    for i, a in enumerate(A):
        axes[1 + i // cols, i % cols].imshow(a, cmap="viridis")
    fig.suptitle(f"{name}: first-conv feature maps", fontsize=7)
    return figure_png(fig, dpi=100)


def grad_cam(est: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Grad-CAM (Selvaraju et al. 2017) maps in [0, 1] at the last convolution, for the predicted class.

    Hand-written (about 20 lines of hooks) rather than adding the ``grad-cam`` package for one panel.
    Returns (maps resized to the image size, predicted class indices) or None for non-network pipelines.
    """
    import torch
    import torch.nn.functional as F

    parts = _net_parts(est)
    conv = last_conv(parts[0]) if parts else None
    if conv is None:
        return None
    model = parts[0]
    store: dict[str, Any] = {}
    hf = conv.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    hb = conv.register_full_backward_hook(lambda m, gi, go: store.__setitem__("g", go[0]))
    try:
        model.eval()
        x = _to_input(parts, X).float().requires_grad_(True)
        with torch.enable_grad():
            logits = model(x)
            pred = logits.argmax(1)
            logits.gather(1, pred[:, None]).sum().backward()
    finally:
        hf.remove()
        hb.remove()
    a, g = store["a"].detach().float(), store["g"].detach().float()
    cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=X.shape[1:3], mode="bilinear", align_corners=False)[:, 0]
    cam = cam / cam.flatten(1).max(1).values.clamp_min(1e-8)[:, None, None]
    return cam.cpu().numpy(), pred.cpu().numpy()


def gradcam_panel(est: Any, name: str, X: np.ndarray, y: np.ndarray, class_names: list[str]) -> bytes | None:
    res = grad_cam(est, X)
    if res is None:
        return None
    cams, pred = res
    classes = getattr(est, "classes_", np.arange(len(class_names)))
    plt = pyplot()
    fig, axes = plt.subplots(2, len(X), figsize=(1.3 * len(X), 2.9), squeeze=False)
    for i in range(len(X)):
        _show(axes[0, i], X[i], f"true {class_names[y[i]]}")
        _show(axes[1, i], X[i], f"pred {class_names[int(classes[pred[i]])]}")
        axes[1, i].imshow(cams[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
    fig.suptitle(f"{name}: Grad-CAM at the last convolution", fontsize=8)
    return figure_png(fig, dpi=100)


# -- mistakes ----------------------------------------------------------------------------------------------
def confidence(est: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(predicted labels, confidence, what the confidence is): probability when available, else a margin."""
    try:
        P = np.asarray(est.predict_proba(X))
        classes = np.asarray(getattr(est, "classes_", np.arange(P.shape[1])))
        return classes[P.argmax(1)], P.max(1), "probability"
    except (AttributeError, NotImplementedError):
        pass
    pred = np.asarray(est.predict(X))
    clf, feats = getattr(est, "classifier_", None), getattr(est, "features_", None)
    if clf is not None and feats is not None and hasattr(clf, "decision_function"):
        D = np.asarray(clf.decision_function(feats.transform(X)))
        if D.ndim == 2:
            s = np.sort(D, axis=1)
            return pred, s[:, -1] - s[:, -2], "decision margin"
        return pred, np.abs(D), "decision margin"
    return pred, np.zeros(len(pred)), "none"


def mistakes_panel(est: Any, name: str, X: np.ndarray, y: np.ndarray, class_names: list[str], n: int = 8
                   ) -> bytes | None:
    pred, conf, kind = confidence(est, X)
    wrong = np.flatnonzero(pred != y)
    if len(wrong) == 0:
        return None
    wrong = wrong[np.argsort(-conf[wrong], kind="stable")][:n]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(wrong), figsize=(1.3 * len(wrong), 1.9), squeeze=False)
    for ax, i in zip(axes[0], wrong):
        _show(ax, X[i], f"{class_names[y[i]]}→{class_names[pred[i]]}\n{conf[i]:.2f}")
    fig.suptitle(f"{name}: most confident mistakes (true→pred, {kind}); {len(np.flatnonzero(pred != y))} errors "
                 f"of {len(y)}", fontsize=7)
    return figure_png(fig, dpi=100)


# -- driver ------------------------------------------------------------------------------------------------
def make_gallery(dataset: str, pipelines: Sequence[str], out: str | Path, *, seed: int = 0, split: Any = None,
                 image_size: int | None = None, params: dict[str, dict[str, Any]] | None = None,
                 n_images: int = 8, data_dir: str | None = None, tracker: Any = None,
                 log: Callable[[str], None] = print, dry_run: bool = False) -> list[Path]:
    """Write every panel for ``dataset`` (pipelines fitted through :mod:`.fitting`) and log them as a run.

    ``dry_run`` only says which pipelines would be fitted and which have a cached model, writing nothing and
    creating no run; it returns ``[]``."""
    from bench.datasets import SplitOptions
    from bench.jobs import Job, experiment_name
    from bench.measure import environment_tags
    from bench.studies.fitting import fit_or_load, load_split
    from pipelines.registry import get_spec

    split = split or SplitOptions()
    out = Path(out)
    probe = Job(dataset, pipelines[0] if pipelines else "pixels-knn", seed, {}, split, image_size)
    data = load_split(probe, data_dir)
    if dry_run:
        from bench.studies.fitting import model_path

        for p in pipelines:
            job = Job(dataset, p, seed, dict((params or {}).get(p, {})), split, image_size)
            log(f"plan  {job.run_name}/gallery: " + ("cached model" if model_path(job, data).exists() else "fit"))
        log(f"plan  {dataset}/gallery: a new run (a gallery is never skipped as done), panels → {out}")
        return []
    out.mkdir(parents=True, exist_ok=True)
    names = data.class_names
    ex = pick_examples(data.y_test, n_images)
    Xe, ye = data.X_test[ex], data.y_test[ex]
    files: dict[str, bytes] = {"hog.png": hog_panel(Xe)}
    files["sift_keypoints.png"], _ = sift_panel(Xe)
    files["bovw_words.png"] = bovw_panel(data.X_train[pick_examples(data.y_train, 200)], seed=seed)
    files["color_histograms.png"] = color_hist_panel(data.X_train, data.y_train, names)
    nets = []
    for p in pipelines:
        job = Job(dataset, p, seed, dict((params or {}).get(p, {})), split, image_size)
        est, _ = fit_or_load(job, data, log=log)
        panel = mistakes_panel(est, p, data.X_test, data.y_test, names, n_images)
        if panel:
            files[f"mistakes_{p}.png"] = panel
        parts = _net_parts(est)
        if parts:  # one network view per pipeline: a frozen-feature pipeline builds its network only once
            net = SimpleNamespace(model_=parts[0], prep_=parts[1], device_=parts[2], classes_=est.classes_)
            nets.append((get_spec(p).family, p, net))
            for fname, png in ((f"cnn_filters_{p}.png", filters_panel(net, p)),
                               (f"cnn_feature_maps_{p}.png", feature_maps_panel(net, p, Xe[0]))):
                if png:
                    files[fname] = png
    if nets:  # Grad-CAM on a transfer model when one was given, else on the first scratch CNN
        fam, p, est = sorted(nets, key=lambda t: t[0] != "transfer")[0]
        png = gradcam_panel(est, p, Xe, ye, names)
        if png:
            files[f"gradcam_{p}.png"] = png
    paths = []
    for name, png in files.items():
        (out / name).write_bytes(png)
        paths.append(out / name)
    if tracker is not None:
        exp = tracker.experiment_id(experiment_name(dataset))
        with tracker.run(exp, f"{dataset}/gallery", {"cvbench.kind": "study", "study": STUDY, "dataset": dataset,
                                                      **environment_tags()}) as run_id:
            tracker.log_params(run_id, {"pipelines": ",".join(pipelines), "seed": seed, "split_hash": data.split_hash})
            tracker.log_artifacts(run_id, {f"gallery/{k}": v for k, v in files.items()})
    log(f"gallery: {len(files)} panel(s) → {out}")
    return paths
