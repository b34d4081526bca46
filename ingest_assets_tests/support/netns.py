"""Test hosts on one machine: a network namespace each, joined by a private /24, sharing no disk.

``PrivateNetwork`` creates a bridge in the root namespace holding the hub address (``.1``: where the
tests serve the broker, PostgreSQL, S3 and the API stand-in) and, per host, a network namespace
with a veth pair plugged into the bridge (``.2``, ``.3``, ...). A namespace has only its
loopback and that link, no default route: what runs in it reaches the hub's services and
nothing else. Everything is removed on exit, also after a failure, and leftovers of the same
names from a killed run are removed first.

``host_command`` runs a command in a host's namespace with a private mount namespace in which
the tests' folder is covered by an empty tmpfs except the host's own folder: a worker sees its
own ``INGEST_HOME`` and ``DAGSTER_HOME``, not another's, nor the hub's (the project's code and
virtualenv, outside the tests' folder, stay visible, as an image would be).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

# In the host's mount namespace: keep the own folder at /mnt, cover the tests' folder with an
# empty tmpfs, put the own folder back at its path, then run the command there.
_ISOLATE = """set -e
mount --bind "$1" /mnt
mount -t tmpfs tmpfs "$2"
mkdir -p "$1"
mount --bind /mnt "$1"
umount /mnt
cd "$1"
shift 2
exec "$@"
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _free_subnet(seed: int) -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0/13 that no interface of this machine uses."""
    used = _ip("-o", "-4", "addr", "show").stdout
    for offset in range(2048):
        number = (seed + offset) % 2048
        net = f"10.{200 + number // 256}.{number % 256}."
        if f" {net}" not in used:
            return ipaddress.ip_network(f"{net}0/24")
    raise RuntimeError("no free /24 in 10.200.0.0/13 for the test network")


class PrivateNetwork:
    """A private /24: the hub (root namespace, on a bridge) and one namespace per host."""

    def __init__(self, hosts: Sequence[str]) -> None:
        tag = f"ia{os.getpid() % 100_000}"
        self.bridge = f"{tag}br"
        self.subnet = _free_subnet(os.getpid())
        self.hub = str(self.subnet.network_address + 1)
        self.namespaces = {host: f"{tag}-{host}" for host in hosts}
        self.addresses = {
            host: str(self.subnet.network_address + 2 + i) for i, host in enumerate(hosts)
        }
        self._veths = {host: f"{tag}v{i}" for i, host in enumerate(hosts)}

    def __enter__(self) -> PrivateNetwork:
        self._remove()
        try:
            self._create()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _create(self) -> None:
        prefix = self.subnet.prefixlen
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.hub}/{prefix}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host, namespace in self.namespaces.items():
            veth = self._veths[host]
            _ip("netns", "add", namespace)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", namespace, "addr", "add", f"{self.addresses[host]}/{prefix}", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")

    def _remove(self) -> None:
        for namespace in self.namespaces.values():  # takes its end of the veth pair along
            _ip("netns", "delete", namespace, check=False)
        _ip("link", "delete", self.bridge, check=False)

    def routes(self, host: str) -> str:
        """The routing table inside ``host``'s namespace."""
        return _ip("-n", self.namespaces[host], "route", "show").stdout

    def host_command(self, host: str, own: Path, hidden: Path, command: Sequence[str]) -> list[str]:
        """``command`` as run on ``host``: its namespace, and of ``hidden`` only ``own`` seen."""
        own.mkdir(parents=True, exist_ok=True)
        isolate = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ISOLATE, "sh"]
        return [
            "ip", "netns", "exec", self.namespaces[host],
            *isolate, str(own), str(hidden), *command,
        ]  # fmt: skip
