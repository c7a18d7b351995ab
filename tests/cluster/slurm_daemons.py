"""A real SLURM 22.05 cluster on this machine: munge, slurmctld and two slurmd ("node1", "node2").

Facts and pitfalls: ../shared/reference/slurm-local-cluster.md.  Client commands
read /etc/slurm/slurm.conf, so it is written there (jobs then need no SLURM_CONF).
The state folder is wiped at each start (a saved DRAIN reason would survive).
Only the daemons started here are stopped, by the pids recorded at start.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
NODES = (("node1", 6818), ("node2", 6819))
CPUS_PER_NODE = 2

CONF = """ClusterName=kronostest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool/%n
SlurmctldPidFile={base}/run/slurmctld.pid
SlurmdPidFile={base}/run/slurmd-%n.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,sched_interval=5
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
ReturnToService=2
KillWait=10
MinJobAge=600
MailProg=/bin/true
{nodes}
PartitionName=debug Default=YES Nodes=ALL MaxTime=INFINITE State=UP
"""


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


@dataclass
class LocalCluster:
    base: Path
    pids: dict[str, int] = field(default_factory=dict)     # what this helper started: name -> pid
    previous_conf: str | None = None

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    def write_conf(self) -> None:
        host = socket.gethostname()
        nodes = "\n".join(f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
                          f"CPUs={CPUS_PER_NODE} RealMemory=10000 State=UNKNOWN" for name, port in NODES)
        if SLURM_CONF.exists():
            self.previous_conf = SLURM_CONF.read_text()
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(CONF.format(host=host, base=self.base, nodes=nodes))

    def wipe_state(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        for sub in ("state", "run", "log", *(f"spool/{name}" for name, _ in NODES)):
            (self.base / sub).mkdir(parents=True, exist_ok=True)

    def start_munge(self) -> None:
        """munged, unless one already answers (then it is not ours to stop)."""
        if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
            return
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        munge = pwd.getpwnam("munge")
        os.chown(run_dir, munge.pw_uid, munge.pw_gid)
        run_dir.chmod(0o755)
        # -F: foreground, so the pid recorded is munged's own.
        self._spawn("munged", ["/usr/sbin/munged", "-F"], user="munge")
        self._wait(lambda: subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0,
                   20, "munged to answer")

    def _spawn(self, name: str, cmd: list[str], user: str | None = None) -> None:
        with open(self.log_dir / f"{name}.console", "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                    user=user, group=user, extra_groups=[] if user else None)
        self.pids[name] = proc.pid

    @staticmethod
    def _wait(predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise TimeoutError(f"SLURM test cluster: timed out waiting for {what}")

    def nodes_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True).stdout.split()
        return len(out) == len(NODES) and all(state == "idle" for state in out)

    def start(self) -> "LocalCluster":
        self.wipe_state()
        self.write_conf()
        self.start_munge()
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        for name, _ in NODES:
            self._spawn(f"slurmd-{name}", ["slurmd", "-D", "-N", name])
        try:
            self._wait(self.nodes_idle, 60, "both nodes to be idle")
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM exactly the daemons started here (slurmd first), then SIGKILL what stays."""
        order = [n for n in self.pids if n.startswith("slurmd")] + [n for n in self.pids if not n.startswith("slurmd")]
        for name in order:
            self._signal(self.pids[name], signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(self._alive(self.pids[n]) for n in order):
            time.sleep(0.2)
        for name in order:
            if self._alive(self.pids[name]):
                self._signal(self.pids[name], signal.SIGKILL)
        for name in order:
            try:
                os.waitpid(self.pids[name], 0)
            except ChildProcessError:
                pass
        self.pids.clear()
        if self.previous_conf is not None:
            SLURM_CONF.write_text(self.previous_conf)
        else:
            SLURM_CONF.unlink(missing_ok=True)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            return done == 0
        except ChildProcessError:
            return False
