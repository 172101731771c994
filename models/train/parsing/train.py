"""Fine-tunes the parsing network on CCP photos 0001-0900 (prepare.py's labels and ROIs).

Photos 0851-0900 are held back from the gradient to watch for over-fitting (printed each few
epochs, never used to pick weights: the last epoch's weights are the ones exported). Photos
0901-1004 are the dataset's held-out split: this script refuses to read them.

Each step crops every photo at its pose ROI, jittered in scale, position and rotation (the ROIs
percept computes at inference come from a detector, a face-seeded search or a neighbour's
shadow), flips half of them (swapping left and right labels: the person's own sides swap in a
mirror), and jitters brightness, contrast and saturation. Outside the photo the crop repeats
the edge pixels, as percept's crops for the pose models do.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import paths
from labels import FLIP_PAIRS, LIP, NUM_CLASSES
from net import HEADS, ParsingNet, head_of, network_for

# The crop the network sees: the pose ROI's full height and 3/4 of its width (the ROI is a
# square around a standing person, mostly empty at the sides), 384x288 pixels, portrait.
CROP_H, CROP_W = 384, 288
HELD_OUT_FIRST = 901
TRAIN_LAST = 850


def roi_of(entry: dict, label: np.ndarray) -> tuple[float, float, float, float]:
    """(cx, cy, size, rotation radians) of a photo's pose ROI; a square around the labelled
    person when the pose model found nobody."""
    roi = entry.get("roi")
    if roi:
        return roi["cx"], roi["cy"], max(roi["width"], roi["height"]), math.radians(roi["rotation_deg"])
    ys, xs = np.nonzero(label)
    if len(xs) == 0:
        h, w = label.shape
        return w / 2, h / 2, max(w, h), 0.0
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    return cx, cy, 1.25 * max(xs.max() - xs.min(), ys.max() - ys.min()), 0.0


def load(data: Path, ccp: Path, ids: list[int]):
    people = json.loads((data / "people.json").read_text())
    photos, labels, rois = [], [], []
    for i in ids:
        assert i < HELD_OUT_FIRST, "the held-out split (0901-1004) is never read for training"
        pid = f"{i:04d}"
        entry = people[pid]
        if not entry.get("pose"):
            continue  # skin could not be split without a pose: its labels would be wrong
        photo = np.asarray(Image.open(ccp / "photos" / f"{pid}.jpg").convert("RGB"))
        label = np.asarray(Image.open(data / "labels" / f"{pid}.png"))
        photos.append(torch.from_numpy(photo.copy()))
        labels.append(torch.from_numpy(label.copy()))
        rois.append(roi_of(entry, label))
    return photos, labels, rois


# Rotation jitter in degrees (train.py --rotate sets it; 20 for the first two stages).
ROTATE = 20.0


def crop_grid(roi, shape, jitter: bool, rng: random.Random) -> torch.Tensor:
    """grid_sample grid (1, CROP_H, CROP_W, 2) for the rotated ROI (the pose ROI's side tall,
    CROP_W / CROP_H of it wide), in normalised coordinates. Pixel centres at i + 0.5, as
    percept's crops (RotatedRect::crop_to_image)."""
    cx, cy, size, rot = roi
    if jitter:
        size *= math.exp(rng.uniform(-0.15, 0.2))
        cx += rng.uniform(-0.08, 0.08) * size
        cy += rng.uniform(-0.08, 0.08) * size
        rot += math.radians(rng.uniform(-ROTATE, ROTATE))
    h, w = shape
    tv = (torch.arange(CROP_H, dtype=torch.float32) + 0.5) / CROP_H - 0.5
    tu = ((torch.arange(CROP_W, dtype=torch.float32) + 0.5) / CROP_W - 0.5) * (CROP_W / CROP_H)
    v, u = torch.meshgrid(tv, tu, indexing="ij")
    c, s = math.cos(rot), math.sin(rot)
    x = cx + size * (u * c - v * s)
    y = cy + size * (u * s + v * c)
    return torch.stack([2 * x / w - 1, 2 * y / h - 1], dim=-1)[None]


def warp(photo, label, grid):
    img = photo.permute(2, 0, 1)[None].float() / 255.0
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    lab = F.grid_sample(label[None, None].float(), grid, mode="nearest", padding_mode="zeros",
                        align_corners=False)[0, 0].long()
    return img, lab


def add_neighbour(img, lab, neighbour, rng):
    """Pastes another training person beside the crop's own, as in a group photo: shifted
    sideways by 35-70 % of the crop's width (never onto the same spot: the crop's person stays
    the one in the middle), scaled 0.75-1.1, behind the crop's person three times in four, in
    front otherwise. The neighbour keeps its own labels: at inference a crop's neighbour is
    labelled too and percept gives each pixel to the nearer skeleton."""
    photo, label, (cx, cy, size, rot) = neighbour
    size *= math.exp(rng.uniform(-0.1, 0.3))  # a larger ROI shows the neighbour smaller
    side = 1 if rng.random() < 0.5 else -1
    # Two draws, one per axis (the shipped weights were trained so): for an upright ROI the
    # sine is ~0 and the shift is sideways; a tilted one is shifted slightly off its own axis.
    cx -= side * rng.uniform(0.35, 0.7) * (CROP_W / CROP_H) * size * math.cos(rot)
    cy -= side * rng.uniform(0.35, 0.7) * (CROP_W / CROP_H) * size * math.sin(rot)
    cy += rng.uniform(-0.08, 0.08) * size
    n_img, n_lab = warp(photo, label, crop_grid((cx, cy, size, rot), label.shape, False, rng))
    there = n_lab > 0
    if rng.random() < 0.75:
        there &= lab == 0
    img = torch.where(there[None], n_img, img)
    lab = torch.where(there, n_lab, lab)
    return img, lab


def sample(photo, label, roi, jitter, rng, neighbour=None):
    img, lab = warp(photo, label, crop_grid(roi, label.shape, jitter, rng))
    if neighbour is not None:
        img, lab = add_neighbour(img, lab, neighbour, rng)
    if jitter:
        if rng.random() < 0.5:
            img = img.flip(-1)
            lab = lab.flip(-1)
            swapped = lab.clone()
            for a, b in FLIP_PAIRS:
                swapped[lab == a] = b
                swapped[lab == b] = a
            lab = swapped
        grey = img.mean(dim=0, keepdim=True)
        img = grey + (img - grey) * rng.uniform(0.7, 1.3)  # saturation
        img = img.mean() + (img - img.mean()) * rng.uniform(0.75, 1.25)  # contrast
        img = (img * rng.uniform(0.75, 1.25)).clamp(0, 1)  # brightness
    return img.permute(1, 2, 0), lab


def class_weights(labels) -> torch.Tensor:
    counts = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    for lab in labels:
        counts += torch.bincount(lab.flatten().long(), minlength=NUM_CLASSES).double()
    freq = counts / counts.sum()
    present = freq[freq > 0]
    med = present.median()
    w = torch.where(freq > 0, (med / freq.clamp(min=1e-9)).sqrt(), torch.zeros_like(freq))
    return w.clamp(0.2, 5.0).float()


def lovasz_softmax(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax loss (Berman, Rannen Triki, Blaschko, CVPR 2018): the convex surrogate of
    1 - IoU, averaged over the classes present in the batch. Cross-entropy rewards pixels, so the
    large classes (background, coats, pants) dominate it; this term weighs every class's IoU the
    same, which is what mIoU counts (the rare classes: skirt, scarf, socks, hat)."""
    probs = logits.softmax(1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    y = y.reshape(-1)
    losses = []
    for c in torch.unique(y).tolist():
        fg = (y == c).float()
        errors = (fg - probs[:, c]).abs()
        errors, order = errors.sort(descending=True)
        fg = fg[order]
        # The Jaccard loss of the first k pixels taken as class c, for every k; its increments
        # are the Lovász extension's gradient.
        total = fg.sum()
        jaccard = 1 - (total - fg.cumsum(0)) / (total + (1 - fg).cumsum(0))
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
        losses.append(torch.dot(errors, jaccard))
    return torch.stack(losses).mean()


# Output plane -> the plane of the other side (left and right arm, leg, shoe): a mirrored
# crop's left arm is the person's right arm.
MIRRORED = list(range(NUM_CLASSES))
for _a, _b in FLIP_PAIRS:
    MIRRORED[_a], MIRRORED[_b] = _b, _a


@torch.no_grad()
def two_views(net, x: torch.Tensor) -> torch.Tensor:
    """Log of the average softmax of `net` on the crops `x` (N, H, W, 3) and on their mirror
    images, flipped back with left and right swapped: what percept computes with mirror=true."""
    plain = net(x).softmax(1)
    mirrored = net(x.flip(2)).softmax(1).flip(3)[:, MIRRORED]
    return (0.5 * (plain + mirrored)).clamp(min=1e-8).log()


@torch.no_grad()
def evaluate(net, photos, labels, rois) -> dict:
    net.eval()
    inter = torch.zeros(NUM_CLASSES)
    union = torch.zeros(NUM_CLASSES)
    truth = torch.zeros(NUM_CLASSES)
    rng = random.Random(0)
    for k in range(0, len(photos), 8):
        batch = [sample(p, l, r, False, rng) for p, l, r in
                 zip(photos[k:k + 8], labels[k:k + 8], rois[k:k + 8])]
        x = torch.stack([b[0] for b in batch])
        y = torch.stack([b[1] for b in batch])
        logits = F.interpolate(net(x), size=(CROP_H, CROP_W), mode="bilinear", align_corners=False)
        pred = logits.argmax(1)
        for c in range(NUM_CLASSES):
            inter[c] += ((pred == c) & (y == c)).sum()
            union[c] += ((pred == c) | (y == c)).sum()
            truth[c] += (y == c).sum()
    net.train()
    iou = inter / union.clamp(min=1)
    # Averaged over the classes the photos contain (as evaluate.py): a class only predicted
    # would otherwise enter the mean at 0 (logs before the context stage counted those).
    present = truth > 0
    return {"miou": float(iou[present].mean()),
            "per_class": {LIP[c]: round(float(iou[c]), 3) for c in range(NUM_CLASSES) if present[c]}}


def main() -> None:
    ap = paths.arguments(__doc__)
    ap.add_argument("--data", default=str(paths.DATA))
    ap.add_argument("--out", default=str(paths.TRAIN))
    ap.add_argument("--pose-model", default=str(paths.POSE_MODEL))
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--stop-after", type=int, default=0,
                    help="end after this many epochs of the --epochs schedule (0: all of them)")
    ap.add_argument("--resume", default="",
                    help="weights to start from (a --stop-after run's last.pt) instead of BlazePose")
    ap.add_argument("--anneal", type=int, default=0,
                    help="with --resume: this many epochs with the learning rate falling "
                         "linearly from --lr-start x the base rates to 0")
    ap.add_argument("--lr-start", type=float, default=0.5)
    ap.add_argument("--average", type=int, default=0,
                    help="with --resume: this many epochs, each with the learning rate falling "
                         "linearly from --lr-start x the base rates to 0, and the weights at "
                         "the end of every epoch averaged (cyclic stochastic weight averaging); "
                         "last.pt is the average, last_epoch.pt the last epoch's own weights")
    ap.add_argument("--rotate", type=float, default=20.0,
                    help="rotation jitter of the crops, in degrees either way")
    ap.add_argument("--neighbours", type=float, default=0.0,
                    help="share of crops given a second training person beside their own")
    ap.add_argument("--lovasz", type=float, default=0.0,
                    help="weight of the Lovász-softmax term added to the cross-entropy, computed "
                         "at the network's own output resolution (0: cross-entropy only)")
    ap.add_argument("--context", action="store_true",
                    help="the network with the context branch (net.py); resumed from weights "
                         "without it, the branch starts at zero")
    ap.add_argument("--head", choices=HEADS, default="wide",
                    help="the head over the trunk (net.py); resumed from weights with the other "
                         "head, the trunk and the branches that fit are kept and the head starts "
                         "anew")
    ap.add_argument("--teacher", default="",
                    help="weights of a trained network whose softmax the new one also learns "
                         "(knowledge distillation, --distil)")
    ap.add_argument("--distil", type=float, default=1.0,
                    help="with --teacher: weight of the KL divergence from the teacher's softmax, "
                         "at the network's own output resolution")
    ap.add_argument("--teacher-views", type=int, choices=(1, 2), default=1,
                    help="with --teacher: 2 = the teacher's softmax is the average of its two "
                         "views, the crop and its mirror image (flipped back, left and right "
                         "swapped), as percept's mirror=true; the student learns from one view "
                         "what two give")
    ap.add_argument("--freeze-trunk", action="store_true",
                    help="train only what follows the trunk; with a teacher of the same trunk, "
                         "the trunk runs once for both")
    args = ap.parse_args()
    global ROTATE
    ROTATE = args.rotate

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ccp, data = Path(args.ccp), Path(args.data)

    photos, labels, rois = load(data, ccp, list(range(1, TRAIN_LAST + 1)))
    v_photos, v_labels, v_rois = load(data, ccp, list(range(TRAIN_LAST + 1, HELD_OUT_FIRST)))
    print(f"train {len(photos)} photos, watch {len(v_photos)}", flush=True)
    weights = class_weights(labels)
    print("class weights", {LIP[i]: round(float(w), 2) for i, w in enumerate(weights)}, flush=True)

    net = ParsingNet(args.pose_model, context=args.context, head=args.head)
    if args.resume:
        state = torch.load(args.resume, map_location="cpu")
        new = ("context.", "scene.")
        if head_of(state) != args.head:
            # A new head on resumed features: what has the same name and shape is kept.
            new += ("refine64.", "refine4.", "detail.", "fuse128.", "classify.")
            own = net.state_dict()
            state = {k: v for k, v in state.items()
                     if not k.startswith(new) or (k in own and own[k].shape == v.shape)}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith(new) for k in missing):
            raise SystemExit(f"{args.resume} does not fit the network: missing {missing}, "
                             f"unexpected {unexpected}")
        if missing:
            print(f"starting anew: {sorted(missing)}", flush=True)
    teacher = None
    if args.teacher:
        t_state = torch.load(args.teacher, map_location="cpu")
        teacher = network_for(args.pose_model, t_state)
        teacher.load_state_dict(t_state)
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    if args.freeze_trunk:
        for p in net.trunk.parameters():
            p.requires_grad_(False)
    # The trunk runs once for both networks when it is frozen and the teacher's own.
    shared_trunk = teacher is not None and args.freeze_trunk and all(
        torch.equal(a, b) for a, b in zip(net.trunk.state_dict().values(),
                                          teacher.trunk.state_dict().values()))
    if teacher is not None:
        print(f"distilling from {args.teacher} (weight {args.distil}, "
              f"{'shared' if shared_trunk else 'own'} trunk)", flush=True)
    head = [p for n, p in net.named_parameters() if not n.startswith("trunk.")]
    trunk = [p for n, p in net.named_parameters() if n.startswith("trunk.") and p.requires_grad]
    opt = torch.optim.AdamW([{"params": trunk, "lr": args.lr * 0.4}, {"params": head, "lr": args.lr}],
                            weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(photos) / args.batch)
    if args.average and (args.anneal or not args.resume):
        raise SystemExit("--average needs --resume and replaces --anneal")
    epochs = args.average or args.anneal or args.stop_after or args.epochs
    total = steps_per_epoch * (args.anneal or args.epochs)
    warm = steps_per_epoch
    base = [g["lr"] for g in opt.param_groups]
    rng = random.Random(args.seed)
    step = 0
    log = []
    # The sum of the epoch-end weights (--average), in float64 to add up exactly.
    summed: dict[str, torch.Tensor] = {}
    started = time.time()
    for epoch in range(epochs):
        order = list(range(len(photos)))
        rng.shuffle(order)
        running, n = 0.0, 0
        for k in range(0, len(order), args.batch):
            idx = order[k:k + args.batch]
            batch = []
            for i in idx:
                neighbour = None
                if args.neighbours and rng.random() < args.neighbours:
                    j = rng.randrange(len(photos))
                    neighbour = (photos[j], labels[j], rois[j])
                batch.append(sample(photos[i], labels[i], rois[i], True, rng, neighbour))
            x = torch.stack([b[0] for b in batch])
            y = torch.stack([b[1] for b in batch])
            if args.average:
                f = args.lr_start * (1 - (step % steps_per_epoch) / steps_per_epoch)
            elif args.anneal:
                f = args.lr_start * (1 - step / total)
            else:
                f = min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / total))
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * f
            if shared_trunk:
                with torch.no_grad():
                    features = net.features(x)
                raw = net.decode(features)
            else:
                raw = net(x)
            logits = F.interpolate(raw, size=(CROP_H, CROP_W), mode="bilinear", align_corners=False)
            loss = F.cross_entropy(logits, y, weight=weights)
            if args.lovasz:
                # The labels at the network's resolution (nearest: no label is invented at a
                # boundary), a quarter of the pixels to sort.
                small = F.interpolate(y[:, None].float(), size=raw.shape[2:], mode="nearest")[:, 0]
                loss = loss + args.lovasz * lovasz_softmax(raw, small.long())
            if teacher is not None:
                with torch.no_grad():
                    if args.teacher_views == 2:
                        taught = two_views(teacher, x)
                    else:
                        taught = (teacher.decode(features) if shared_trunk else teacher(x)).log_softmax(1)
                    if taught.shape[2:] != raw.shape[2:]:
                        # A coarser student: the teacher's probabilities averaged over its cells.
                        taught = F.adaptive_avg_pool2d(taught.exp(), raw.shape[2:]).clamp(min=1e-8).log()
                loss = loss + args.distil * F.kl_div(raw.log_softmax(1), taught, log_target=True,
                                                     reduction="none").sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            running += float(loss.detach()) * len(idx)
            n += len(idx)
            step += 1
        entry = {"epoch": epoch + 1, "loss": round(running / n, 4),
                 "minutes": round((time.time() - started) / 60, 1)}
        if (epoch + 1) % 4 == 0 or epoch + 1 == epochs or args.average:
            entry["watch"] = evaluate(net, v_photos, v_labels, v_rois)
        if args.average:
            # Copies: state_dict() shares the parameters' storage, which loading the average
            # below would overwrite, and training goes on from the epoch's own weights.
            own = {k: v.clone() for k, v in net.state_dict().items()}
            for k, v in own.items():
                summed[k] = summed.get(k, 0.0) + v.double()
            torch.save(own, out / "last_epoch.pt")
            averaged = {k: (v / (epoch + 1)).to(own[k].dtype) for k, v in summed.items()}
            torch.save(averaged, out / "last.pt")
            net.load_state_dict(averaged)
            entry["watch_average"] = evaluate(net, v_photos, v_labels, v_rois)
            net.load_state_dict(own)
        else:
            torch.save(net.state_dict(), out / "last.pt")
        log.append(entry)
        print(json.dumps(entry), flush=True)
    name = "train_log_average.json" if args.average else \
        "train_log_anneal.json" if args.anneal else "train_log.json"
    (out / name).write_text(json.dumps(
        {"args": vars(args), "epochs": log, "train_photos": len(photos),
         "wall_minutes": round((time.time() - started) / 60, 1)}, indent=1))


if __name__ == "__main__":
    main()
