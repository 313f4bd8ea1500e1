"""``runs``: list runs and the queue; stop, cancel or delete a run; clear the queue."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import access, runqueue, runs
from .common import EXIT_ERROR, EXIT_USAGE, add_json_flag, add_root_flags, emit, number_or_none, one_line, use_ray


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``runs`` to the CLI's subparsers."""
    p = sub.add_parser("runs", help="list runs and the queue; stop, cancel or delete a run; clear the queue")
    p.add_argument("action", nargs="?", default="list", choices=["list", "cancel", "stop", "delete", "clear"])
    p.add_argument("run_id", nargs="?", help="the run to act on")
    add_root_flags(p, "run queued runs on this Ray cluster (as FMNIST_RAY_ADDRESS)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List runs and the queue, or stop, cancel or delete a run, or clear the queue."""
    use_ray(args)
    root = Path(args.root) if args.root else runs.default_runs_root()
    if args.root and (not root.exists() or not root.is_dir()):
        print(f"error: runs folder {one_line(root, 200)} does not exist", file=sys.stderr)
        return EXIT_ERROR
    if args.action != "list":
        # The command line acts as the machine's admin: whoever has a shell has the files anyway.
        if args.action != "clear" and not args.run_id:
            print(f"error: runs {args.action} needs a run id", file=sys.stderr)
            return EXIT_USAGE
        try:
            if args.action == "cancel":
                runqueue.cancel(args.run_id, root, access.ADMIN)
                done = f"cancelled {args.run_id}"
            elif args.action == "stop":
                done = f"{runqueue.stop(args.run_id, root, access.ADMIN)} {args.run_id}"
            elif args.action == "delete":
                runqueue.delete(args.run_id, root, access.ADMIN)
                done = f"deleted {args.run_id}"
            else:
                done = f"cancelled {len(runqueue.clear_queue(root, access.ADMIN))} waiting runs"
        except (runs.RunError, access.AccessError) as exc:
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
        runqueue.dispatch(root)
        if args.json:
            emit({"ok": True, "done": done})
        else:
            print(done)
        return 0
    try:
        runqueue.dispatch(root)  # every CLI call moves the queue on (no daemon)
        infos = runs.list_runs(root)
        queue = {q.run_id: q for q in runqueue.queue_view(root, infos)}
    except (OSError, ValueError) as exc:
        print(f"error: cannot read runs folder {one_line(root, 200)}: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    rows = []
    for r in infos:
        duration = number_or_none(r.duration_s)
        q = queue.get(r.run_id)
        rows.append(
            {
                "run_id": r.run_id,
                "path": str(r.path),
                "status": r.status,  # checked against the live process: a dead trainer is 'failed'
                "preset": str(r.preset),
                "epochs_done": r.epochs_done,
                "best_val_accuracy": number_or_none(r.best_val_accuracy),
                "test_accuracy": number_or_none(r.test_accuracy),
                "duration_s": None if duration is None else round(duration, 1),
                "pid": r.status_data.get("pid"),
                "error": None if r.status_data.get("error") is None else one_line(r.status_data.get("error")),
                "has_model": r.has_model,
                "owner": r.owner,
                "sweep": r.sweep,
                # The queue: 0 = training now, 1 = next, ...; None = not in the queue (ended).
                "queue_position": None if q is None else q.position,
                "eta_start": None if q is None or q.eta_start is None else round(q.eta_start, 1),
                "ray_job": r.status_data.get("ray_job"),
            }
        )
    if args.json:
        emit(rows)
        return 0
    if not rows:
        print(f"no runs in {root}")
    for r in rows:
        acc = f"{r['test_accuracy']:.2%}" if r["test_accuracy"] is not None else "-"
        where = ""
        if r["queue_position"]:
            where = (
                f"  #{r['queue_position']} in queue, starts ~{time.strftime('%H:%M', time.localtime(r['eta_start']))}"
            )
        print(
            f"{r['run_id']:32s} {r['status']:9s} {r['preset']:6s} epochs {r['epochs_done']:3d}  test {acc}"
            + (f"  by {r['owner']}" if r["owner"] else "")
            + where
            + (f"  ({r['error']})" if r["error"] and r["status"] == "failed" else "")
        )
    return 0
