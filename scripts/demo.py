"""`make demo`: start the service on the embedded backend, make a sample clip with FFmpeg's test
sources, transcode and thumbnail it through the WebSocket API with a live progress bar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ffpool.ffmpeg.binaries import BinariesNotFound, resolve
from ffpool.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "media"
OUT = ROOT / "demo-output"
FFPOOL = str(Path(sys.executable).with_name("ffpool"))
HEALTH = "http://127.0.0.1:8081/health"


def make_sample(dest: Path) -> None:
    try:  # found as the service finds it, so a static build from `make setup` works too
        ffmpeg = resolve(Settings()).ffmpeg
    except BinariesNotFound as exc:
        sys.exit(f"demo: {exc} (or run `make setup`)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"demo: generating a 10 s 640x360 sample clip at {dest}")
    args = [  # one option group a line, as on a command line
        *["-hide_banner", "-loglevel", "error", "-y"],
        *["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=10"],
        *["-f", "lavfi", "-i", "sine=frequency=440:duration=10"],
        *["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
        *["-c:a", "aac", "-shortest"],
    ]
    subprocess.run([ffmpeg, *args, str(dest)], check=True, timeout=120)


def wait_healthy(server: subprocess.Popen[bytes], deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("demo: the service exited at start-up (see its log above)")
        try:
            with urllib.request.urlopen(HEALTH, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit("demo: the service did not become healthy")


def main() -> None:
    sample = MEDIA / "clips" / "sample.mp4"
    make_sample(sample)
    env = os.environ | {"MEDIA_ROOT": str(MEDIA), "HOST": "127.0.0.1"}
    server = subprocess.Popen([FFPOOL, "serve"], env=env)
    try:
        wait_healthy(server)
        print("demo: transcoding the clip to 720p H.264 (uploaded over HTTP)")
        transcode = ["transcode", "--file", str(sample), "--height", "720", "-o", str(OUT)]
        subprocess.run([FFPOOL, "submit", *transcode], check=True, timeout=300)
        print("demo: thumbnail at 2 s, 320 px wide (path under MEDIA_ROOT)")
        thumbnail = ["thumbnail", "--path", "clips/sample.mp4", "--time", "2", "--width", "320"]
        subprocess.run([FFPOOL, "submit", *thumbnail, "-o", str(OUT)], check=True, timeout=60)
        print(f"demo: outputs are in {OUT}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
