// Package hiltests holds edgedepth's end-to-end and hardware-in-the-loop tests: the real
// daemon binary, built by TestMain, against real peers started by the tests (mosquitto,
// RTSP servers fed by ffmpeg), with faults injected from outside.
package hiltests
