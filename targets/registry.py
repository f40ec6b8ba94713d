"""The target kinds, and the one way from what the user gave to a Target.

A new kind (a phone over adb, a microcontroller) is one file defining a `targets.target.Kind` and one line
in KINDS below (docs/howto-add-target.md). `bench`, `bench-remote`, `validate HOST=`, `sweep TARGETS=` and the
device validation's predictions reach a device only through `resolve_target`.
"""
from __future__ import annotations

from dataclasses import replace

from mobilenet_edge.pipeline.config import DeviceProfile
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets import local, mcu, pi_emulator, ssh
from mobilenet_edge.targets.profiles import available_profiles, load_profile
from mobilenet_edge.targets.target import Given, Kind, Target

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    local.KIND,  # this machine
    ssh.KIND,  # user@host or an ~/.ssh/config alias; also `ssh:<host>`
    pi_emulator.KIND,  # the emulated Raspberry Pi of targets/pi_emulator/
    mcu.KIND,  # a microcontroller: TFLite Micro and Vela here, under SRAM / FLASH (targets/mcu/, make mcu)
)}
LOCAL = local.KIND.name
DEFAULT_KIND = ssh.KIND.name  # what a bare host name, or a profile's `host`, is reached with


def resolve_target(name: str | None = None, *, host: str | None = None, port: int | None = None,
                   identity: str | None = None, known_hosts: str | None = None, ssh_config: str | None = None,
                   strict_host_keys: bool = True, python: str | None = None,
                   profile: str | DeviceProfile | None = None) -> Target:
    """The Target for what the user gave.

    name: a TARGETS word: a kind (`local`, `pi-emulator`), `<kind>:<address>` (`ssh:pi@host`), a device
      profile that names its device (`host = …` in its .toml, optionally `kind = …`), or an ssh host / alias.
    host: HOST=: an ssh host or alias, or a kind's own spelling (`pi-emulator`); never a profile.
    Neither: the device PROFILE names, else this machine.
    port, identity, known_hosts, ssh_config, strict_host_keys, python: what the user set; they win over
      the kind's defaults and the profile's.
    profile: PROFILE= (name, .toml path or loaded): threads, runtimes, warm-up and the device's python.
    Raises: PipelineError ("expected …, received …") for what names no target.
    """
    if name is not None and host is not None:
        raise PipelineError(f"expected a target name or HOST, received both ({name!r}, {host!r})")
    prof = load_profile(profile) if profile else None
    given = Given(port=port, identity=identity, known_hosts=known_hosts, ssh_config=ssh_config,
                  strict_host_keys=strict_host_keys, python=python, profile=prof)
    word = name if name is not None else host
    if word is None:
        if prof is None or not prof.host:
            return KINDS[LOCAL].make(LOCAL, given)
        return _profile_target(prof.name, prof, given)  # HOST unset: the device PROFILE names
    if not isinstance(word, str) or not word.strip():
        raise PipelineError(f"expected a target ({', '.join(KINDS)}, a profile with a host, or user@host), "
                            f"received {word!r}")
    prefix, colon, rest = word.partition(":")
    if word in KINDS:
        return KINDS[word].make(word, given)
    if colon and prefix in KINDS:
        return KINDS[prefix].make(word, replace(given, address=rest))
    if name is not None and (word in available_profiles() or word.endswith(".toml")):
        return _profile_target(word, load_profile(word), given)
    return KINDS[DEFAULT_KIND].make(word, replace(given, address=word))


def parse_targets(names) -> tuple[Target, ...]:
    """TARGETS="local pi-emulator pi@raspberrypi.local": one Target each; PipelineError for a name that is no
    target, or two names of the same device."""
    names = list(dict.fromkeys(names))
    targets = tuple(resolve_target(n) for n in names)
    if len({t.label for t in targets}) != len(targets):
        raise PipelineError(f"expected TARGETS to name each device once, received {' '.join(names)}")
    return targets


def _profile_target(name: str, device: DeviceProfile, given: Given) -> Target:
    """A profile that names its device: its host (and port, keys, kind) unless the user gave them."""
    if not device.host:
        raise PipelineError(f"expected profile {name!r} in TARGETS to name its device (host = \"user@host\"), "
                            f"received a profile without host; give the host instead")
    kind = device.kind or DEFAULT_KIND
    if kind not in KINDS:
        raise PipelineError(f"expected kind among {sorted(KINDS)} in profile {name!r}, received {kind!r}")
    given = replace(given, address=device.host, port=given.port or device.port,
                   identity=given.identity or device.identity, known_hosts=given.known_hosts or device.known_hosts,
                   profile=given.profile or device)
    return KINDS[kind].make(name, given)

