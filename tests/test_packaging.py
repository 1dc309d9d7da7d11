"""The wheel installs into a clean venv and every module imports from there (not from the repo)."""

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

IMPORT_ALL = """
import importlib, pkgutil, sys, redpajama
assert 'site-packages' in redpajama.__file__, redpajama.__file__
names = ['redpajama'] + [m.name for m in pkgutil.walk_packages(redpajama.__path__, 'redpajama.')
                         if not m.name.endswith('__main__')]  # running the CLI is not importing it
for name in names:
    importlib.import_module(name)
for sub in ('pipelines', 'quality_signals', 'training', 'kernels'):
    assert f'redpajama.{sub}' in names, sub
print(len(names))
"""


@pytest.mark.slow
def test_wheel_installs_in_clean_venv_and_imports_every_module(tmp_path: Path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("redpajama-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
    )
    # Dependencies come from the dev environment's site-packages, added as a plain path: its
    # editable-install hook (.pth) is not processed there, so redpajama must come from the wheel.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([sysconfig.get_paths()["purelib"], *site.getsitepackages()]),
    }
    result = subprocess.run(
        [str(python), "-c", IMPORT_ALL], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert int(result.stdout.strip()) >= 10
    help_text = subprocess.run(
        [str(venv / "bin" / "redpajama"), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "ingest" in help_text.stdout
