"""GStreamer's RTSP server (gst-rtsp-server through python3-gi), for edgedepth's tests.

Run with Debian's /usr/bin/python3 (the one with python3-gi):

    gst_rtsp_server.py PORT CODEC WIDTH HEIGHT FPS PATTERN PATH...

Serves a live videotestsrc pattern on each PATH (a pipeline of its own per path, shared
by that path's clients) on 127.0.0.1:PORT (0: a free port). Prints "PORT <n>" on stdout
once it listens; exits 0 on SIGTERM or SIGINT, 2 when it cannot listen.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def encoder(codec, fps):
    # Zero latency, no B-frames (presentation order = decoding order), an IDR every
    # second, parameter sets repeated before each IDR (config-interval=-1) so a client
    # that joins mid-stream can decode.
    if codec == "h264":
        return ("x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=%d "
                "! video/x-h264,profile=constrained-baseline "
                "! rtph264pay name=pay0 pt=96 config-interval=-1" % fps)
    if codec == "h265":
        return ("x265enc tune=zerolatency speed-preset=ultrafast key-int-max=%d "
                "option-string=bframes=0:log-level=error "
                "! rtph265pay name=pay0 pt=96 config-interval=-1" % fps)
    if codec == "mjpeg":
        return "jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26"
    raise SystemExit("unknown codec %r: want h264, h265 or mjpeg" % codec)


def main():
    port, codec, width, height, fps, pattern = sys.argv[1:7]
    paths = sys.argv[7:]
    width, height, fps = int(width), int(height), int(fps)
    Gst.init(None)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    mounts = server.get_mount_points()
    for i, path in enumerate(paths):
        # is-live: frames are made at the frame rate and timestamped by the pipeline
        # clock as they are made, like a camera's. Patterns that scroll (smpte, ...)
        # scroll at a different speed on each path, so that the eyes differ.
        launch = ("( videotestsrc is-live=true pattern=%s horizontal-speed=%d "
                  "! video/x-raw,width=%d,height=%d,framerate=%d/1 ! videoconvert "
                  "! video/x-raw,format=I420 ! %s )"
                  % (pattern, 2 + i, width, height, fps, encoder(codec, fps)))
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        mounts.add_factory("/" + path, factory)

    if server.attach(None) == 0:
        print("cannot listen on 127.0.0.1:%s" % port, file=sys.stderr)
        sys.exit(2)
    print("PORT %d" % server.get_bound_port(), flush=True)

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
