"""``ptz-calib``: the calibration command line (one subcommand per task).

    ptz-calib intrinsics IMAGES... --board checkerboard:9x6:0.025 [--flags FIX_ASPECT_RATIO]
                         [--auto-fix] [--output camera_info.yaml] [--json]
    ptz-calib simulate RIG.yaml OUT_DIR [--camera left] [--zoom-steps 20] [--views-per-step 8]
                       [--seed 0] [--json]
    ptz-calib zoom-intrinsics DATASET_DIR OUT_DIR [--camera left] [--json]
    ptz-calib calibrate DATASET_DIR OUT_DIR [--camera left] [--json]
    ptz-calib evaluate MODEL.yaml (--truth RIG.yaml | --dataset HELD_OUT_DIR) [--json]

Exit status: 0 done, 1 the task failed (the message says why), 2 bad command line.
Add a subcommand with a ``_add_<name>(subparsers)`` function that sets ``func`` (see
:func:`_add_intrinsics`); ``func(args)`` returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TextIO

import numpy as np
import yaml

from . import __version__
from .calibration import (
    CalibrationError,
    CalibrationOptions,
    Detection,
    DetectionOptions,
    IntrinsicCalibration,
    Target,
    TargetSpecError,
    calibrate_intrinsics,
    describe_target,
    detect_files,
    flag_names,
    parse_flags,
    parse_target,
    target_from_dict,
    target_to_dict,
)
from .calibration.capture_protocol import ProtocolOptions, simulate_dataset
from .calibration.dataset import DatasetError, load_dataset
from .calibration.zoom_fit import FAMILIES, ZoomFitError, ZoomFitOptions, calibrate_zoom
from .model import camera_info_dict, save_model, write_camera_info
from .fileio import atomic_write_text
from .simulation import RigFileError, default_rig_path

__all__ = ["main", "build_parser", "load_target"]

PROG = "ptz-calib"


class CommandError(Exception):
    """A task failed for a reason the user can act on (printed without a traceback)."""


# -- helpers -------------------------------------------------------------------------------------
def load_target(spec: str) -> Target:
    """``--board``: a short form (``checkerboard:9x6:0.025``) or a YAML/JSON file holding a target
    dict, or a manifest with a ``target`` block."""
    if spec.split(":", 1)[0].lower() in ("checkerboard", "charuco"):
        return parse_target(spec)
    path = Path(spec)
    if not path.is_file():
        raise TargetSpecError("--board", "", f"{spec!r} is neither a board (checkerboard:COLSxROWS:SQUARE, "
                                             "charuco:SXxSY:SQUARE:MARKER[:DICT]) nor a file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TargetSpecError(str(path), "", f"cannot read: {exc}") from None
    if isinstance(data, dict) and "target" in data:
        return target_from_dict(data["target"], str(path), "target")
    return target_from_dict(data, str(path))


def _progress(stream: TextIO) -> Optional[Callable[[int, int, str], None]]:
    """A one-line progress bar on ``stream`` if it is a terminal, else None."""
    if not stream.isatty():
        return None

    def show(done: int, total: int, item: str) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        name = Path(item).name[:30]
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name:<30}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


def _fmt_std(value: float) -> str:
    return "undetermined" if not math.isfinite(value) else f"{value:.3g}"


# -- intrinsics ----------------------------------------------------------------------------------
def _add_intrinsics(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "intrinsics", help="single-camera calibration from images of a target (one zoom step)",
        description="Calibrate one camera (a fixed camera, or a PTZ camera at one zoom step) from "
                    "images of a planar target with Zhang's method (cv2.calibrateCamera), and "
                    "write a camera_info YAML file.",
        epilog="examples:\n"
               "  ptz-calib intrinsics left*.jpg --board checkerboard:9x6:0.025 --flags FIX_ASPECT_RATIO\n"
               "  ptz-calib intrinsics img/*.png --board charuco:10x7:0.09:0.07:DICT_5X5_100 "
               "--auto-fix -o cam.yaml --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (one view each)")
    p.add_argument("--board", required=True, metavar="SPEC",
                   help="target: checkerboard:COLSxROWS:SQUARE (inner corners, metres), "
                        "charuco:SQUARES_XxSQUARES_Y:SQUARE:MARKER[:DICT], or a YAML/JSON file "
                        "with a target dict")
    p.add_argument("--flags", default="", metavar="NAMES",
                   help="cv2.calibrateCamera flags, comma separated, e.g. "
                        "FIX_ASPECT_RATIO,ZERO_TANGENT_DIST,FIX_K3 (or an integer)")
    p.add_argument("--auto-fix", action="store_true",
                   help="fix what the views cannot determine (k3, tangential, k2, principal "
                        "point, k1; long focal lengths) and report it")
    p.add_argument("--min-views", type=int, default=3, metavar="N",
                   help="fewest usable views (default 3)")
    p.add_argument("-o", "--output", metavar="YAML", help="write a camera_info YAML file")
    p.add_argument("--camera-name", default="camera", help="camera_name in the camera_info file")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    d = p.add_argument_group("detection")
    d.add_argument("--detector", choices=("auto", "classic", "sb"), default="auto",
                   help="checkerboard detector: findChessboardCorners (classic), "
                        "findChessboardCornersSB (sb), or classic then sb (auto, default)")
    d.add_argument("--subpix-window", type=int, default=None, metavar="PX",
                   help="cornerSubPix half-window (default: 0.3 x corner spacing; 0 = off). "
                        "OpenCV's calibration sample: 11")
    d.add_argument("--subpix-eps", type=float, default=1e-3, metavar="PX",
                   help="cornerSubPix stopping step (default 0.001; OpenCV's sample: 0.1)")
    d.add_argument("--subpix-iterations", type=int, default=40, metavar="N",
                   help="cornerSubPix iterations (default 40; OpenCV's sample: 30)")
    d.add_argument("--min-corners", type=int, default=6, metavar="N",
                   help="fewest ChArUco corners in a partial view (default 6)")
    p.set_defaults(func=_run_intrinsics)


def _intrinsics_report(target: Target, paths: Sequence[str], results: Sequence[Any],
                       calib: IntrinsicCalibration, output: Optional[str], timing: dict[str, float]) -> dict[str, Any]:
    used = iter(range(len(calib.sources)))
    images = []
    for path, r in zip(paths, results):
        if isinstance(r, Detection):
            k = next(used)
            images.append({"file": path, "status": "used", "points": r.count, "complete": r.complete,
                           "rms": float(calib.per_view_errors[k])})
        else:
            images.append({"file": path, "status": r.reason.value, "message": r.message})
    return {"command": "intrinsics", "version": __version__, "target": target_to_dict(target),
            "images": images, "calibration": calib.to_dict(), "output": output, "timing_s": timing}


def _print_intrinsics(out: TextIO, target: Target, report: dict[str, Any], calib: IntrinsicCalibration) -> None:
    images = report["images"]
    skipped = [i for i in images if i["status"] != "used"]
    out.write(f"{describe_target(target)}: {len(images)} images, {len(images) - len(skipped)} used, "
              f"{len(skipped)} skipped\n")
    std = calib.std_intrinsics
    out.write(f"image {calib.image_size[0]}x{calib.image_size[1]}, flags: "
              f"{', '.join(flag_names(calib.flags)) or 'none'}\n")
    for name, value in (("fx", calib.fx), ("fy", calib.fy), ("cx", calib.cx), ("cy", calib.cy)):
        out.write(f"  {name:3s} {value:12.4f} px   std {_fmt_std(std[name])}\n")
    for name, value in report["calibration"]["distortion"].items():
        out.write(f"  {name:3s} {value:12.6f}      std {_fmt_std(std.get(name, float('nan')))}\n")
    e = calib.per_view_errors
    out.write(f"RMS reprojection error {calib.rms:.4f} px (views {e.min():.3f} .. {e.max():.3f} px)\n")
    for name, reason in calib.fixed.items():
        out.write(f"fixed {name}: {reason}\n")
    for w in calib.warnings:
        out.write(f"warning: {w}\n")
    for i in skipped:
        out.write(f"skipped {i['file']}: {i['message']}\n")
    if report["output"]:
        out.write(f"wrote {report['output']}\n")


def _run_intrinsics(args: argparse.Namespace) -> int:
    try:
        target = load_target(args.board)
        det_options = DetectionOptions(method=args.detector, subpix_window=args.subpix_window,
                                       subpix_eps=args.subpix_eps, subpix_iterations=args.subpix_iterations,
                                       min_corners=args.min_corners)
        cal_options = CalibrationOptions(flags=parse_flags(args.flags), auto_fix=args.auto_fix,
                                         min_views=args.min_views)
    except (TargetSpecError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    t0 = time.perf_counter()
    results = detect_files(args.images, target, det_options, _progress(sys.stderr))
    t1 = time.perf_counter()
    try:
        calib = calibrate_intrinsics(results, cal_options)
    except CalibrationError as exc:
        raise CommandError(str(exc)) from None
    t2 = time.perf_counter()
    if args.output:
        try:
            write_camera_info(args.output, calib.camera_info(args.camera_name))
        except (OSError, CalibrationError) as exc:
            raise CommandError(f"cannot write {args.output}: {exc}") from None
    report = _intrinsics_report(target, args.images, results, calib, args.output,
                                {"detection": round(t1 - t0, 4), "calibration": round(t2 - t1, 4)})
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_intrinsics(sys.stdout, target, report, calib)
    return 0


# -- simulate ------------------------------------------------------------------------------------
def _add_simulate(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "simulate", help="write a calibration dataset from the simulator (capture protocol)",
        description="Drive a simulated PTZ camera of a rig through the capture protocol (a zoom "
                    "sweep looking at the scene's boards, plus pan and tilt sweeps at the widest "
                    "zoom), and write a dataset: images, manifest.yaml with the REPORTED pan, tilt, "
                    "zoom, temperature and stamps, and truth.yaml with the simulator's ground "
                    "truth. Time is simulated: a run takes as long as rendering.",
        epilog="examples:\n"
               "  ptz-calib simulate default data/sim_left              # the package's rig\n"
               "  ptz-calib simulate my_rig.yaml out --camera right --zoom-steps 12 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rig", metavar="RIG.yaml", help="rig file, or 'default' for config/sim_rig.yaml")
    p.add_argument("out", metavar="OUT_DIR", help="dataset folder to write (created)")
    p.add_argument("--camera", help="camera of the rig (default: its first)")
    defaults = ProtocolOptions()
    p.add_argument("--zoom-steps", type=int, default=defaults.zoom_steps, metavar="N",
                   help=f"zoom steps evenly spaced over the zoom range (default {defaults.zoom_steps})")
    p.add_argument("--zooms", metavar="LIST", help="explicit raw zooms, comma separated (instead of --zoom-steps)")
    p.add_argument("--views-per-step", type=int, default=defaults.views_per_step, metavar="N",
                   help=f"images per zoom step (default {defaults.views_per_step})")
    p.add_argument("--pan-sweep", type=int, default=defaults.pan_sweep, metavar="N",
                   help=f"images of each pan sweep at the widest zoom (default {defaults.pan_sweep}; 0: none)")
    p.add_argument("--tilt-sweep", type=int, default=defaults.tilt_sweep, metavar="N",
                   help=f"images of each tilt sweep at the widest zoom (default {defaults.tilt_sweep}; 0: none)")
    p.add_argument("--targets", metavar="NAMES", help="scene boards to use, comma separated (default: all)")
    p.add_argument("--seed", type=int, default=0, help="simulator noise seed (default 0)")
    p.add_argument("--stereo", metavar="LEFT,RIGHT", nargs="?", const="left,right",
                   help="a dual dataset: OUT_DIR/LEFT and OUT_DIR/RIGHT (each camera's protocol) and "
                        "OUT_DIR/stereo (synchronized pairs for the rig calibration); default cameras left,right")
    p.add_argument("--stereo-views", type=int, default=8, metavar="N",
                   help="synchronized pairs per board both cameras see (default 8)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT_DIR")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=_run_simulate)


def _number_list(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CommandError(f"{option}: expected numbers separated by commas, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise CommandError(f"{option}: expected finite numbers separated by commas, got {text!r}")
    return values


def _run_simulate(args: argparse.Namespace) -> int:
    try:
        options = ProtocolOptions(
            zoom_steps=args.zoom_steps, views_per_step=args.views_per_step,
            zoom_values=_number_list(args.zooms, "--zooms") if args.zooms else None,
            pan_sweep=args.pan_sweep, tilt_sweep=args.tilt_sweep,
            targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()) if args.targets else None,
            seed=args.seed)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    rig = default_rig_path() if args.rig == "default" else args.rig
    if args.stereo:
        return _run_simulate_stereo(args, rig, options)
    try:
        result = simulate_dataset(rig, args.out, args.camera, options, _progress(sys.stderr), args.overwrite)
    except (RigFileError, ValueError, FileExistsError, OSError) as exc:
        raise CommandError(str(exc)) from None
    report = {"command": "simulate", "version": __version__, **result.to_dict()}
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    plan = result.plan
    tags: dict[str, int] = {}
    for v in plan.views:
        tags[v.tag] = tags.get(v.tag, 0) + 1
    parts = ", ".join(f"{n} {t.replace('_', ' ')}" for t, n in tags.items())
    sys.stdout.write(f"camera {result.camera}: {result.captures} images ({parts}) over {len(plan.zooms)} "
                     f"zoom steps in {result.timing['total']:.1f} s ({result.simulated_time:.0f} s simulated)\n")
    for k, names in plan.targets_by_step.items():
        sys.stdout.write(f"  zoom {plan.zooms[k]:7.0f}: {', '.join(names)}\n")
    for line in plan.skipped:
        sys.stdout.write(f"skipped {line}\n")
    sys.stdout.write(f"wrote {result.manifest}\nwrote {result.truth}\n")
    return 0


def _run_simulate_stereo(args: argparse.Namespace, rig_path: Any, options: ProtocolOptions) -> int:
    from .calibration.capture_protocol import StereoOptions, run_stereo_protocol
    from .simulation import load_rig

    names = [n.strip() for n in args.stereo.split(",") if n.strip()]
    if len(names) != 2:
        raise CommandError(f"--stereo: expected two camera names LEFT,RIGHT, got {args.stereo!r}")
    try:
        rig = load_rig(rig_path)
        for n in names:
            if n not in rig.cameras:
                raise CommandError(f"no camera {n!r} in {rig.source} (cameras: {', '.join(rig.cameras)})")
        result = run_stereo_protocol(rig, names[0], names[1], args.out,
                                     StereoOptions(views_per_board=args.stereo_views, seed=args.seed), options,
                                     _progress(sys.stderr), args.overwrite)
    except (RigFileError, ValueError, FileExistsError, OSError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        json.dump({"command": "simulate", "version": __version__, **result}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for n, r in result["cameras"].items():
        sys.stdout.write(f"camera {n}: {r['captures']} images in {r['folder']}\n")
    st = result["stereo"]
    sys.stdout.write(f"stereo: {st['pairs']} synchronized pairs of {', '.join(st['boards'])} in {st['folder']}\n")
    return 0


# -- zoom-intrinsics -----------------------------------------------------------------------------
def _add_zoom_intrinsics(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "zoom-intrinsics", help="intrinsics over the zoom range from a dataset (per step, then curves)",
        description="Calibrate every zoom step of a dataset (Zhang's method with auto-fix), link the "
                    "steps through same-pose views of a board, and fit fx, fy, cx, cy, k1, k2 over "
                    "raw zoom with every curve family, chosen by leave-one-zoom-out "
                    "cross-validation. Writes OUT_DIR/model.yaml (these intrinsics with ideal "
                    "kinematics), OUT_DIR/camera_info/*.yaml at a few zooms and OUT_DIR/report.json.",
        epilog="example:\n  ptz-calib zoom-intrinsics data/sim_left out/left --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET_DIR", help="dataset folder (with manifest.yaml) or manifest file")
    p.add_argument("out", metavar="OUT_DIR", help="folder for the model, camera_info files and report")
    p.add_argument("--camera", help="camera to calibrate (needed if the dataset has several)")
    p.add_argument("--min-views", type=int, default=3, metavar="N", help="fewest usable views per zoom step (default 3)")
    p.add_argument("--no-link", action="store_true",
                   help="do not link the zoom steps (plain per-step Zhang focal lengths)")
    p.add_argument("--families", default=",".join(FAMILIES), metavar="LIST",
                   help=f"curve families to choose from (default: {','.join(FAMILIES)})")
    p.add_argument("--camera-info-zooms", metavar="LIST",
                   help="raw zooms of the camera_info files (default: 5 across the zoom range)")
    p.add_argument("--json", action="store_true", help="machine-readable output (the report) on stdout")
    p.set_defaults(func=_run_zoom_intrinsics)


def _run_zoom_intrinsics(args: argparse.Namespace) -> int:
    try:
        options = ZoomFitOptions(min_views=args.min_views, link_steps=not args.no_link,
                                 families=tuple(f.strip() for f in args.families.split(",") if f.strip()))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    info_zooms = _number_list(args.camera_info_zooms, "--camera-info-zooms") if args.camera_info_zooms else None
    try:
        dataset = load_dataset(args.dataset)
        fit = calibrate_zoom(dataset, args.camera, options, _progress(sys.stderr))
    except (DatasetError, ZoomFitError) as exc:
        raise CommandError(str(exc)) from None
    out = Path(args.out).expanduser()
    lo, hi = fit.mapping.raw_min, fit.mapping.raw_max
    zooms = info_zooms or tuple(float(round(z)) for z in np.linspace(lo, hi, 5))
    written = {}
    try:
        model = fit.model({"calibration": "ptz-calib zoom-intrinsics", "dataset": dataset.source,
                           "kinematics": "ideal (not calibrated)"})
        written["model"] = str(save_model(model, out / "model.yaml", backup=False))
        infos = []
        for z in zooms:
            path = out / "camera_info" / f"{fit.camera}_zoom_{z:g}.yaml"
            infos.append(str(write_camera_info(path, camera_info_dict(model, z))))
        written["camera_info"] = infos
        written["report"] = str(out / "report.json")
        report = {"command": "zoom-intrinsics", "version": __version__, "output": written, **fit.report}
        atomic_write_text(out / "report.json", json.dumps(report, indent=1, allow_nan=False) + "\n")
    except OSError as exc:
        raise CommandError(f"cannot write to {out}: {exc}") from None
    if args.json:
        json.dump(report, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        _print_zoom(sys.stdout, report)
    return 0


def _print_zoom(out: TextIO, report: dict[str, Any]) -> None:
    """The human-readable summary of a zoom-intrinsics report."""
    steps = report["steps"]
    used = [s for s in steps if s["status"] == "ok"]
    w, h = report["image_size"]
    out.write(f"camera {report['camera']} ({w}x{h}): {len(used)} of {len(steps)} "
              f"zoom steps used, {report['captures']} captures\n")
    out.write("   zoom views      fx (std)           cx      cy      k1       source / held\n")
    for s in steps:
        if s["status"] != "ok":
            out.write(f"{s['zoom']:7.0f} {s['views']:5d}  dropped: {s['reason']}\n")
            continue
        e = s["estimates"]
        std = e["fx"]["std"]
        rel = f"{100 * std / e['fx']['value']:.2f} %" if std is not None else "undetermined"
        held = [k for k in ("cx", "k1", "k2") if e[k]["source"] == "fixed"]
        out.write(f"{s['zoom']:7.0f} {s['views']:5d} {e['fx']['value']:10.2f} ({rel:>8s}) {e['cx']['value']:7.1f} "
                  f"{e['cy']['value']:7.1f} {e['k1']['value']:8.4f}  {e['fx']['source']}"
                  f"{' / held: ' + ', '.join('principal point' if k == 'cx' else k for k in held) if held else ''}\n")
    out.write("curves (leave-one-zoom-out CV error of the chosen family):\n")
    for name, p in report["parameters"].items():
        cv = p["cv_error"].get(p["family"])
        rel = p["cv_relative"].get(p["family"])
        runner = sorted((v, f) for f, v in p["cv_error"].items() if v is not None and f != p["family"])
        out.write(f"  {name:3s} {p['family']:16s} CV {cv if cv is not None else float('nan'):.4g}"
                  f"{f' ({100 * rel:.3f} %)' if rel is not None else ''}"
                  f"{f'; next best {runner[0][1]} {runner[0][0]:.4g}' if runner else ''}\n")
    link = report["linking"]
    if link["used"]:
        n_used = sum(1 for lk in link["links"] if lk["used"])
        out.write(f"zoom steps linked by {n_used} same-pose scale ratios (chi2/dof {link['chi2_per_dof']:.2f})\n")
    for w in report["warnings"]:
        out.write(f"warning: {w}\n")
    for d in report["dropped_captures"]:
        out.write(f"dropped {d['message']}\n")
    for r in report["rejected_images"]:
        out.write(f"no view: {r['image']} (zoom {r['zoom']:g}): {r['reason']}\n")
    for key in ("model", "report"):
        out.write(f"wrote {report['output'][key]}\n")
    out.write(f"wrote {len(report['output']['camera_info'])} camera_info files in "
              f"{Path(report['output']['model']).parent / 'camera_info'}\n")


def _add_calibrate(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "calibrate", help="the whole model of one PTZ camera from a dataset (intrinsics over zoom, axes, "
                          "radius vectors, zoom translation, bundle adjustment, report)",
        description="Calibrate one camera of a dataset: intrinsics per zoom step (Zhang, linked steps), "
                    "rotation axes and radius vectors from the pan and tilt sweeps, the zoom translation, "
                    "then a bundle adjustment of everything over all views, and curves over zoom chosen "
                    "by leave-one-zoom-out cross-validation. Writes OUT_DIR/<camera>_model.yaml (previous "
                    "file kept as .bak), camera_info YAMLs at the widest and longest zoom, report.json "
                    "and report.html. A dual dataset (simulate --stereo) calibrates both cameras into "
                    "OUT_DIR/<camera> and then the stereo rig from the synchronized pairs: OUT_DIR/rig.yaml "
                    "and rig_report.json (nothing is written if a step fails); with --models only the rig "
                    "is fitted, through the given models and their correction layers.",
        epilog="examples:\n  ptz-calib simulate default data/sim_left\n"
               "  ptz-calib calibrate data/sim_left out/left\n"
               "  ptz-calib evaluate out/left/left_model.yaml --truth default\n"
               "  ptz-calib simulate default data/dual --stereo && ptz-calib calibrate data/dual out\n"
               "  ptz-calib corrections out/left/left_model.yaml --simulate default  # (and right)\n"
               "  ptz-calib calibrate data/dual out --models out/left/left_model.yaml out/right/right_model.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET_DIR", help="dataset folder (with manifest.yaml) or manifest file")
    p.add_argument("out", metavar="OUT_DIR", help="folder for the model, camera_info files and report")
    p.add_argument("--camera", help="camera to calibrate (needed if the dataset has several)")
    p.add_argument("--order", choices=("pan_tilt", "tilt_pan"), default="pan_tilt",
                   help="which joint carries the other (default pan_tilt: tilt rides on pan)")
    p.add_argument("--min-views", type=int, default=3, metavar="N", help="fewest usable views per zoom step (default 3)")
    p.add_argument("--feedback-sigma-deg", type=float, default=None, metavar="DEG",
                   help="pointing accuracy of the head after backlash is taken up (default 0.03)")
    p.add_argument("--loss", default="soft_l1", choices=("linear", "soft_l1", "huber", "cauchy", "arctan"),
                   help="robust loss of the bundle adjustment (default soft_l1)")
    p.add_argument("--no-bundle", action="store_true", help="skip the bundle adjustment (zoom fit and sweeps only)")
    p.add_argument("--corner-noise", type=float, default=0.0, metavar="PX",
                   help="add Gaussian noise (px std) to every detected corner: sensitivity studies")
    p.add_argument("--noise-seed", type=int, default=0, metavar="SEED", help="seed of --corner-noise (default 0)")
    p.add_argument("--models", nargs=2, metavar="MODEL.yaml",
                   help="dual dataset: fit only the rig, with these calibrated camera models (one per camera, "
                        "matched by camera_name), e.g. after `ptz-calib corrections` measured their layers; "
                        "the report.json beside each gives its zoom translation std")
    p.add_argument("--no-html", action="store_true", help="do not write report.html")
    p.add_argument("--json", action="store_true", help="machine-readable output (summary and files) on stdout")
    p.set_defaults(func=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    from .calibration.bundle import BundleOptions
    from .calibration.pipeline import PipelineError, PipelineOptions, calibrate_camera, write_calibration

    try:
        extra = {} if args.feedback_sigma_deg is None else {"feedback_sigma": math.radians(args.feedback_sigma_deg)}
        options = PipelineOptions(zoom=ZoomFitOptions(min_views=args.min_views, corner_noise=args.corner_noise,
                                                      noise_seed=args.noise_seed),
                                  bundle=BundleOptions(loss=args.loss, **extra), order=args.order,
                                  bundle_adjust=not args.no_bundle)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    bar = _progress(sys.stderr)

    def progress(stage: str, fraction: float, info: dict[str, Any]) -> None:
        if bar is not None:
            bar(int(round(1000 * fraction)), 1000, stage)

    if (Path(args.dataset).expanduser() / "stereo").is_dir():
        return _run_calibrate_stereo(args, options, progress)
    if args.models is not None:
        raise CommandError(f"--models fits a stereo rig: {args.dataset} is not a dual dataset (no stereo folder)")
    try:
        dataset = load_dataset(args.dataset)
        result = calibrate_camera(dataset, args.camera, options, progress)
    except (DatasetError, PipelineError) as exc:
        raise CommandError(str(exc)) from None
    try:
        files = write_calibration(result, args.out, html=not args.no_html)
    except OSError as exc:
        raise CommandError(f"cannot write to {args.out}: {exc}") from None
    report = result.report
    kin = report["kinematics"]
    summary = {"command": "calibrate", "version": __version__, "camera": result.camera,
               "summary": report["summary"],
               "kinematics": {k: kin[k] for k in ("order", "pan", "tilt", "axes_angle_deg")},
               "warnings": report["warnings"], "timing_s": report["timing_s"], "files": files}
    if args.json:
        json.dump(summary, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    o = sys.stdout
    sm = report["summary"]
    o.write(f"camera {result.camera}: {sm['zoom_steps']} zoom steps, {sm['views_used']} views used, "
            f"{sm['views_dropped']} dropped, {sm['outlier_views']} outlier views; "
            f"reprojection RMS {sm['rms_px']:.3f} px\n")
    for name in ("pan", "tilt"):
        j = kin[name]
        std = f" +- {j['axis_std_deg']:.3f} deg" if "axis_std_deg" in j else ""
        o.write(f"  {name:4s} axis [{', '.join(f'{v:+.5f}' for v in j['axis'])}]{std}, radius "
                f"[{', '.join(f'{v:+.1f}' for v in j['radius_mm'])}] mm\n")
    o.write(f"  angle between the axes {kin['axes_angle_deg']:.3f} deg\n")
    for w in report["warnings"]:
        o.write(f"warning: {w}\n")
    o.write(f"took {report['timing_s']['total']:.1f} s; wrote " + ", ".join(files.values()) + "\n")
    return 0


def _run_calibrate_stereo(args: argparse.Namespace, options: Any, progress: Any) -> int:
    """A dual dataset (``simulate --stereo``): each camera from its folder (or ``--models``), then the rig."""
    from .calibration.dual import DualCalibrationError, calibrate_dual, load_camera_model
    from .calibration.rig_calibration import RigOptions

    try:
        given = None if args.models is None else [load_camera_model(p) for p in args.models]
        cal = calibrate_dual(args.dataset, args.out, options,
                             RigOptions(corner_noise=options.zoom.corner_noise, noise_seed=options.zoom.noise_seed),
                             models=given, html=not args.no_html, progress=progress)
    except DualCalibrationError as exc:
        raise CommandError(str(exc)) from None
    rig = cal.rig
    summaries = {n: {"summary": r.report["summary"], "files": cal.files[n]} for n, r in cal.results.items()}
    summaries.update({n: {"model": cal.files[n]["model"]} for n in cal.cameras if n not in cal.results})
    report = {"command": "calibrate", "version": __version__, "cameras": summaries,
              "rig": {k: rig.report[k] for k in ("pairs", "pairs_used", "rms_px", "home", "outliers")},
              "warnings": cal.notes, "files": {"rig": cal.files["rig"], "rig_report": cal.files["rig_report"]}}
    if args.json:
        json.dump(report, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    for name in cal.cameras:
        if name in cal.results:
            s = cal.results[name].report["summary"]
            sys.stdout.write(f"camera {name}: {s['zoom_steps']} zoom steps, {s['views_used']} views, "
                             f"RMS {s['rms_px']:.3f} px\n")
        else:
            sys.stdout.write(f"camera {name}: model {cal.files[name]['model']} (not calibrated again)\n")
    h = rig.report["home"]
    sys.stdout.write(f"rig: {rig.report['pairs_used']} of {rig.report['pairs']} synchronized pairs, RMS "
                     f"{rig.report['rms_px']:.3f} px; baseline {h['baseline_m']:.4f} m, rpy "
                     f"[{', '.join(f'{v:+.3f}' for v in h['rpy_deg'])}] deg\n")
    for note in cal.notes:
        sys.stdout.write(f"warning: {note}\n")
    sys.stdout.write(f"wrote {cal.files['rig']}\n")
    return 0


def _sim_rig_with(rig_arg: str, camera: str):
    """The simulator rig of a ``--truth``/``--simulate`` argument ('default' = the package's),
    checked to have ``camera``; :class:`CommandError` otherwise."""
    from .simulation import load_rig

    try:
        rig = load_rig(None if rig_arg == "default" else rig_arg)
    except RigFileError as exc:
        raise CommandError(str(exc)) from None
    if camera not in rig.cameras:
        raise CommandError(f"no camera {camera!r} in {rig.source} (cameras: {', '.join(rig.cameras)})")
    return rig


def _add_evaluate(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "evaluate", help="error figures of a calibrated model against the simulator's truth or on held-out data",
        description="With --truth RIG.yaml: the model against the simulated camera's true model at "
                    "pan/tilt/zoom settings not used for calibration (focal length, principal point, "
                    "distortion, axes, radius vectors, zoom translation, pose), in the frame where the "
                    "head reports home. With --dataset DIR: reprojection errors on a dataset not used "
                    "for calibration (intrinsics with the board pose fitted per view; and the whole "
                    "model from the reported pan/tilt/zoom).",
        epilog="examples:\n  ptz-calib evaluate out/left/left_model.yaml --truth default\n"
               "  ptz-calib evaluate out/left/left_model.yaml --dataset data/held_out --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.yaml", help="calibrated model file, or a stereo rig file (rig.yaml)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--truth", metavar="RIG.yaml", help="simulator rig file ('default' for the package's)")
    what.add_argument("--dataset", metavar="DIR", help="held-out dataset folder")
    p.add_argument("--camera", help="camera of the rig or dataset (default: the model's camera_name)")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from .calibration.evaluate import evaluate_against_truth, evaluate_on_dataset, home_offset
    from .model import ModelFileError, load_model

    if _is_rig_file(args.model):
        return _run_evaluate_rig(args)
    try:
        model = load_model(args.model)
    except ModelFileError as exc:
        raise CommandError(str(exc)) from None
    camera = args.camera or model.camera_name
    if args.truth:
        rig = _sim_rig_with(args.truth, camera)
        figures = evaluate_against_truth(model, rig.cameras[camera].model, home_offset(rig, camera))
        result = {"command": "evaluate", "against": "truth", "rig": str(rig.source), "camera": camera, **figures}
    else:
        try:
            figures = evaluate_on_dataset(model, load_dataset(args.dataset), camera)
        except (DatasetError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        result = {"command": "evaluate", "against": "dataset", "camera": camera, **figures}
    if args.json:
        json.dump(result, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    o = sys.stdout
    if result["against"] == "truth":
        o.write(f"{camera} against the truth of {result['rig']} (held-out settings):\n")
        o.write(f"  focal length error   max {result['focal_error_pct']['max_abs']:.3f} %\n")
        o.write(f"  principal point      max {result['principal_point_error_px']['max']:.2f} px\n")
        o.write(f"  distortion           max {result['distortion_error_px']['max']:.2f} px\n")
        for j in ("pan", "tilt"):
            o.write(f"  {j:4s} axis {result[j + '_axis_error_deg']:.4f} deg, "
                    f"radius {result[j + '_radius_error_mm']:.2f} mm\n")
        o.write(f"  zoom translation     max {result['zoom_translation_error_mm']['max_abs']:.2f} mm\n")
        pose = result["pose"]
        o.write(f"  pose ({pose['settings']} settings): rotation median {pose['rotation_error_deg']['median']:.4f} "
                f"deg, max {pose['rotation_error_deg']['max']:.4f}; position median "
                f"{pose['position_error_mm']['median']:.2f} mm, max {pose['position_error_mm']['max']:.2f}\n")
    else:
        o.write(f"{camera} on {result['dataset']}: {result['views_used']} of {result['views']} views, "
                f"reprojection RMS {result['reprojection_rms_px']:.3f} px (worst view "
                f"{result['reprojection_rms_px_max_view']:.3f}); whole model from feedback: median "
                f"{result['model_rms_px']['median']:.2f} px, max {result['model_rms_px']['max']:.2f} px\n")
    return 0


def _is_rig_file(path: str) -> bool:
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as handle:
            head = handle.read(400)
    except OSError:
        return False
    return "ptz_calibration/stereo_rig" in head


def _run_evaluate_rig(args: argparse.Namespace) -> int:
    """A stereo rig file against the simulator's truth: Mao et al.'s Table 5 metrics at held-out
    pairs of settings (pans within +-60 deg, tilts -17..29 deg, zooms over the whole range), of the
    models alone and as the nodes use them (reported angles through the heads' mechanics and the
    correction layers), and the localization at rest of targets at 5-30 m."""
    from dataclasses import replace

    from .calibration.rig_calibration import extrinsics_errors
    from .calibration.rig_evaluation import SimulatedRigTruth, localization_at_rest, runtime_extrinsics_errors
    from .corrections import CorrectionLayers
    from .model.stereo_rig import StereoRigFileError, load_rig_model
    from .simulation import load_rig

    if not args.truth:
        raise CommandError("a stereo rig file is evaluated with --truth RIG.yaml")
    try:
        estimate = load_rig_model(args.model)
        rig = load_rig(None if args.truth == "default" else args.truth)
        names = (estimate.left.camera_name, estimate.right.camera_name)
        truth = SimulatedRigTruth.of(rig, *names)
    except (StereoRigFileError, RigFileError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    rng = np.random.default_rng(1)
    n = 200
    zmax = estimate.left.zoom_mapping.raw_max
    settings = [np.c_[rng.uniform(-math.radians(60), math.radians(60), n), rng.uniform(-0.3, 0.5, n),
                      rng.uniform(0.0, zmax, n)] for _ in range(2)]
    def bare(r: Any) -> Any:
        return replace(r, left=replace(r.left, corrections=CorrectionLayers()),
                       right=replace(r.right, corrections=CorrectionLayers()))

    result = {"command": "evaluate", "against": "truth", "rig": str(rig.source), "cameras": list(names),
              **extrinsics_errors(bare(estimate), bare(truth.rig), settings[0], settings[1])}
    home = extrinsics_errors(bare(estimate), bare(truth.rig), np.zeros((1, 3)), np.zeros((1, 3)))
    result["at_home"] = {k: v for k, v in home.items() if k != "per_pair"}
    result["runtime"] = runtime_extrinsics_errors(estimate, truth, n=n)
    result["localization_at_rest"] = localization_at_rest(estimate, truth)
    if args.json:
        json.dump(result, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    o = sys.stdout

    def table5(r: dict[str, Any], indent: str = "  ") -> None:
        e = r["euler_error_deg"]
        o.write(f"{indent}rotation error      median {r['rotation_error_deg']['median']:.4f} deg, "
                f"max {r['rotation_error_deg']['max']:.4f}\n")
        o.write(f"{indent}cosine similarity   min {r['cosine_similarity']['min']:.9f}\n")
        o.write(f"{indent}Euler errors (max)  roll {e['roll_max']:.4f}, pitch {e['pitch_max']:.4f}, "
                f"yaw {e['yaw_max']:.4f} deg\n")
        o.write(f"{indent}translation error   median {r['translation_error_pct']['median']:.3f} %, "
                f"max {r['translation_error_pct']['max']:.3f} %\n")

    o.write(f"rig {names[0]}-{names[1]} against the truth of {result['rig']}, {result['pairs']} held-out pairs of "
            "settings;\nthe models alone (actual angles = reported, no correction layers, no temperature):\n")
    table5(result)
    o.write(f"  at home: rotation {result['at_home']['rotation_error_deg']['max']:.4f} deg, translation "
            f"{result['at_home']['translation_error_pct']['max']:.3f} %\n")
    t_lo, t_hi = result["runtime"]["temperature_range_degc"]
    o.write(f"as the nodes use the rig (reported angles on the command grid, random approach directions, "
            f"{t_lo:g}-{t_hi:g} deg C, the heads' backlash and gear error, every correction layer):\n")
    table5(result["runtime"])
    loc = result["localization_at_rest"]
    o.write(f"localization at rest: {loc['localized']} of {loc['targets']} targets at {loc['range_m'][0]:g}-"
            f"{loc['range_m'][1]:g} m within +-{loc['azimuth_deg']:g} deg, {loc['pixel_sigma']:g} px noise, "
            f"zoomed to {loc['span_m']:g} m across the image:\n")
    if "error_pct" in loc:
        e = loc["error_pct"]
        o.write(f"  error of the range  median {e['median']:.3f} %, 95th percentile {e['p95']:.3f} %, max "
                f"{e['max']:.3f} %; within 0.5 %: {100 * e['within_0.5']:.1f} %\n")
        for band, b in loc["by_range"].items():
            o.write(f"  {band:10s}          median {b['median_pct']:.3f} %, 95th percentile {b['p95_pct']:.3f} %, "
                    f"max {b['max_pct']:.3f} % ({b['n']} targets)\n")
    if loc.get("exact_pixels_error_pct"):
        e = loc["exact_pixels_error_pct"]
        o.write(f"  the same with the true pixels (the calibration's share): median {e['median']:.3f} %, "
                f"95th percentile {e['p95']:.3f} %, max {e['max']:.3f} %; within 0.5 %: "
                f"{100 * e['within_0.5']:.1f} %\n")
    for why in loc["failures"]:
        o.write(f"  failed: {why}\n")
    return 0


def _add_corrections(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "corrections", help="measure, show or switch the correction layers of a model",
        description="Correction layers on top of a calibrated model (pan-tilt correction map, "
                    "temperature compensation, per-zoom optical offset, field rotation), stored in the "
                    "model file. --simulate runs the thermal and pointing sweeps on the simulated camera, "
                    "fits the layers on MODEL and reports the pointing error at maximum zoom at held-out "
                    "pan/tilt/temperature settings with and without them. --enable/--disable switch "
                    "stored layers (the file is rewritten atomically, the previous one kept as .bak).",
        epilog="examples:\n  ptz-calib corrections out/left/left_model.yaml --simulate default -o left_corrected.yaml\n"
               "  ptz-calib corrections left_corrected.yaml --disable thermal\n"
               "  ptz-calib corrections left_corrected.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.yaml", help="calibrated model file")
    p.add_argument("--simulate", metavar="RIG.yaml", help="measure on this simulator rig ('default' for the package's)")
    p.add_argument("--camera", help="camera of the rig (default: the model's camera_name)")
    p.add_argument("--base-frame", choices=("reported", "true"), default="reported",
                   help="home frame of MODEL: where the head reports home (a calibrated model, default) or "
                        "the simulator's own (its true model)")
    p.add_argument("-o", "--output", metavar="OUT.yaml", help="where to write the model with the layers "
                   "(default: MODEL itself, keeping MODEL.bak)")
    p.add_argument("--enable", action="append", default=[], metavar="LAYER", help="switch a stored layer on")
    p.add_argument("--disable", action="append", default=[], metavar="LAYER", help="switch a stored layer off")
    p.add_argument("--seed", type=int, default=3, help="seed of the simulated sweeps")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=_run_corrections)


def _run_corrections(args: argparse.Namespace) -> int:
    import dataclasses

    from .corrections import LAYERS
    from .model import ModelFileError, load_model, save_model

    try:
        model = load_model(args.model)
    except ModelFileError as exc:
        raise CommandError(str(exc)) from None
    result: dict[str, Any] = {"command": "corrections", "model": args.model}
    layers = model.corrections
    for name in args.enable + args.disable:
        if name not in LAYERS:
            raise CommandError(f"unknown layer {name!r} (layers: {', '.join(LAYERS)})")
    if args.simulate:
        from .calibration.correction_sweeps import correct_on_simulator, reported_home_frame

        camera = args.camera or model.camera_name
        rig = _sim_rig_with(args.simulate, camera)
        spec = rig.cameras[camera]
        frame = reported_home_frame(rig, camera, model.metadata.get("temperature_degc")) \
            if args.base_frame == "reported" else None
        try:
            measured = correct_on_simulator(spec, rig.scene, model, frame, seed=args.seed)
        except ValueError as exc:
            raise CommandError(f"the sweeps could not be fitted: {exc}") from None
        for name in ("pointing", "thermal"):
            layers = layers.with_layer(name, getattr(measured.layers, name))
        result["measured"] = measured.report
    if args.enable or args.disable:
        layers = layers.enabled(**{n: True for n in args.enable}, **{n: False for n in args.disable})
    changed = layers != model.corrections
    if changed:
        out = save_model(dataclasses.replace(model, corrections=layers), args.output or args.model)
        result["written"] = str(out)
        report_file = Path(out).parent / "report.json"
        if report_file.is_file():  # the calibration report beside the model shows the layers too
            from .report import write_html

            try:
                report = json.loads(report_file.read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"{report_file}: cannot update the report: {exc}") from None
            report["corrections"] = {"layers": layers.to_dict(),
                                     **({"measured": result["measured"]} if "measured" in result else {})}
            atomic_write_text(report_file, json.dumps(report, indent=2, allow_nan=False, default=float))
            result["report_html"] = str(write_html(report, report_file.parent / "report.html"))
    result["layers"] = {n: {"present": getattr(layers, n) is not None, "enabled": layers.active(n) is not None}
                        for n in LAYERS}
    if args.json:
        json.dump(result, sys.stdout, indent=2, allow_nan=False, default=float)
        sys.stdout.write("\n")
        return 0
    o = sys.stdout
    for name in LAYERS:
        layer = getattr(layers, name)
        state = "absent" if layer is None else ("on" if layers.active(name) is not None else "off")
        o.write(f"  {name:12s} {state}\n")
    if "measured" in result:
        h = result["measured"]["held_out"]
        th = result["measured"]["thermal"]
        o.write(f"thermal: boresight {th['boresight_x_rad_per_degc']:.3g} / {th['boresight_y_rad_per_degc']:.3g} rad per "
                f"deg C, focal {th['focal_ppm_per_degc']:.1f} ppm per deg C\n")
        pm = result["measured"]["pointing"]
        o.write(f"pointing: pan backlash {math.degrees(pm['pan']['backlash']):.4f} deg, tilt backlash "
                f"{math.degrees(pm['tilt']['backlash']):.4f} deg, fit RMS "
                f"{math.degrees(pm['fit_rms_rad'][0]):.4f} / {math.degrees(pm['fit_rms_rad'][1]):.4f} deg\n")
        o.write(f"pointing error at zoom {h['zoom']:g}, {h['settings']} held-out settings "
                f"({h['temperature_range_degc'][0]:.1f}-{h['temperature_range_degc'][1]:.1f} deg C), RMS: "
                f"none {h['none_px']['rms']:.2f} px, pointing map {h['pointing_px']['rms']:.2f} px, "
                f"temperature {h['thermal_px']['rms']:.2f} px, both {h['both_px']['rms']:.2f} px "
                f"(ratio {h['ratio_rms']:.2f})\n")
    if changed:
        o.write(f"wrote {result['written']}" + (f" and {result['report_html']}" if "report_html" in result else "")
                + "\n")
    return 0


# -- program -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``ptz-calib`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Calibrate PTZ cameras: detection, intrinsics, (later) the full "
                               "pan/tilt/zoom model, simulation and evaluation.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_intrinsics(sub)
    _add_simulate(sub)
    _add_zoom_intrinsics(sub)
    _add_calibrate(sub)
    _add_evaluate(sub)
    _add_corrections(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``ptz-calib`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except CommandError as exc:
        if getattr(args, "json", False):
            json.dump({"command": args.command, "error": str(exc)}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        sys.stderr.write(f"{PROG} {args.command}: error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
