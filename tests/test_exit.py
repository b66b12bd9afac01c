"""Exit of a process that started the embedded Ray: prompt, and nothing of Ray left running.

Ray's own exit hook sleeps half a second for forwarded worker logs (the
embedded Ray forwards none) and stops the GCS before the autoscaler monitor,
whose SIGTERM handler then waits on the gone GCS until Ray kills it a second
later. :func:`raybt.ray.runtime.stop_embedded_ray` runs first: the monitor
goes at once, then a plain ``ray.shutdown()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import atexit
    import ray

    def after_raybt():  # registered before ensure_ray: runs after raybt's exit hook, before Ray's own
        print("initialized at Ray's hook", ray.is_initialized(), flush=True)
        print("monitor exit code", monitor.poll(), flush=True)

    atexit.register(after_raybt)

    from ray._private import ray_constants, worker
    from raybt.ray.runtime import ensure_ray

    ensure_ray(num_cpus=1)
    node = worker._global_node
    print("pids", " ".join(str(info.process.pid) for infos in node.all_processes.values() for info in infos))
    monitor = node.all_processes[ray_constants.PROCESS_TYPE_MONITOR][0].process
    print("task", ray.get(ray.remote(lambda: 41 + 1).remote()), flush=True)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_embedded_ray_is_stopped_by_raybt_at_exit_monitor_first(tmp_path, repo_root):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=repo_root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in done.stdout.splitlines())
    out = done.stdout
    assert "task 42" in out, out
    assert "initialized at Ray's hook False" in out, out  # raybt's hook shut Ray down before Ray's own ran
    assert "monitor exit code None" not in out, out
    pids = [int(p) for p in lines["pids"].split()]
    assert len(pids) >= 4, out  # gcs, raylet, monitor, log monitor, ...
    assert not [p for p in pids if _alive(p)], "Ray processes left running after the process exited"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


ENTRY = textwrap.dedent("""
    import atexit
    import sys

    atexit.register(lambda: print("hook registered before the command ran", flush=True))
    from raybt.cli import entry

    sys.argv = ["raybt", *sys.argv[1:]]
    entry()
""")


@pytest.mark.parametrize("args, code, out, err", [
    (["init", "{tmp}"], 0, "wrote ", ""),
    (["run", "{tmp}/missing.yaml"], 2, "", "error: "),
    (["report", "{tmp}/no-run"], 2, "", "error: "),
])
def test_the_raybt_command_exits_with_mains_code_after_every_exit_hook(tmp_path, repo_root, args, code, out, err):
    """``raybt`` (:func:`raybt.cli.entry`) ends the process itself once main returns: with main's
    exit code, its output flushed, and every exit hook run (one registered before it too)."""
    script = tmp_path / "entry.py"
    script.write_text(ENTRY)
    argv = [a.format(tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == code, (done.stdout, done.stderr[-2000:])
    assert out in done.stdout and err in done.stderr, (done.stdout, done.stderr)
    assert done.stdout.rstrip().endswith("hook registered before the command ran"), done.stdout
    assert "Traceback" not in done.stderr, done.stderr


def test_argparse_exits_still_take_the_ordinary_way(tmp_path):
    script = tmp_path / "entry.py"
    script.write_text(ENTRY)
    for argv, code in ((["--help"], 0), (["run", "--no-such-flag"], 2)):
        done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
        assert done.returncode == code, (argv, done.stdout, done.stderr)
        assert "hook registered before the command ran" in done.stdout, done.stdout
