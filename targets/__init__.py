"""Where artifacts run: this machine (`local`) and a device over ssh (`ssh`: a Raspberry Pi, any Linux board).

There is no Android (adb) target: benchmark .tflite files on a phone with LiteRT's own benchmark app
(README, "Android").

Each target runs the standalone `benchmarks/runner.py` on every .tflite/.onnx artifact of a variant
folder and writes `benchmark-<target>.json` beside them. Device profiles (`profiles/*.toml`, loaded by
`targets.profiles.load_profile`) give the defaults for a kind of device; `pi_emulator/` brings up an
emulated Raspberry Pi behind sshd on 127.0.0.1 so that the ssh path is tested on aarch64 here.
"""
