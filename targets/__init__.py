"""Where artifacts run. A target is data (`target.Target`: name, kind, how to reach it, its runtimes and
profile); its kind (`target.Kind`) says how it is reached. The kinds are registered in `registry.KINDS`:
`local` (this machine, local.py), `ssh` (a Raspberry Pi, any Linux board, ssh.py) and `pi-emulator`
(pi_emulator/: an emulated Raspberry Pi behind sshd on 127.0.0.1, so that the ssh path is tested on aarch64
here). `registry.resolve_target` turns HOST=, PORT=, PROFILE= or a TARGETS= name into a Target;
docs/howto-add-target.md shows how to add a kind (a phone over adb, a microcontroller).

Each target runs the standalone `benchmarks/runner.py` on every .tflite/.onnx artifact of a variant
folder and writes `benchmark-<target>.json` beside them. Device profiles (`profiles/*.toml`, loaded by
`targets.profiles.load_profile`) give the defaults for a kind of device.
"""
