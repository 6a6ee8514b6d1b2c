"""caffe_relabel.threads: passive wait policies, the user's own settings kept."""

import os
import subprocess
import sys

from caffe_relabel.threads import set_wait_policy


def test_sets_passive_policies_when_unset():
    env = {}
    assert set_wait_policy(env) == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}


def test_keeps_what_the_user_chose():
    env = {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "28"}
    assert set_wait_policy(env) == {}
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "28"}
    # GOMP_SPINCOUNT overrides the wait policy in libgomp: a user who set it chose the waiting.
    env = {"GOMP_SPINCOUNT": "1000"}
    set_wait_policy(env)
    assert "OMP_WAIT_POLICY" not in env


def test_set_before_torch_loads_through_the_engine_backend():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")}
    code = ("import sys, os, builtins\n"
            "seen = {}\n"
            "real = builtins.__import__\n"
            "def hook(name, *a, **k):\n"
            "    if name == 'torch' and 'torch' not in sys.modules:\n"
            "        seen['policy'] = os.environ.get('OMP_WAIT_POLICY')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = hook\n"
            "import caffe_relabel.backends.engine\n"
            "print(seen['policy'])\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "PASSIVE"
