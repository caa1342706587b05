// Package gpio drives edgedepth's pins through periph: the camera trigger output, the
// status LED and the snapshot button.
//
// # Concepts
//
// The logic takes periph's interfaces (gpio.PinOut for Trigger and StatusLED, gpio.PinIn
// for Button), never a concrete driver, so tests run on periph's gpiotest fakes. Open is
// the only place that touches the host: host.Init loads periph's host drivers (the Linux
// GPIO v2 character device, /dev/gpiochip*, kernel 5.10+, i.e. JetPack 5/6), then
// gpioreg.ByName resolves the line names of Config (as `gpioinfo` prints them). Like a
// periph driver, Open ends in one of three states: Loaded, Skipped (no GPIO here, no
// pins configured, a line that does not exist: a reason, never an error that stops the
// daemon) or Failed (invalid config, a line that refuses to be driven).
//
//   - Trigger pulses an output at the camera frame rate on an absolute schedule
//     (pulse n rises at start + n/rate), so latency never accumulates into drift; a pulse
//     more than half a period late is skipped and counted.
//   - StatusLED plays a Pattern (on/off steps as data) per LEDState: starting slow blink,
//     running solid, training fast blink, degraded double blink, error SOS.
//   - Button debounces edges (the level must hold for Debounce) and sends presses and
//     releases on Events.
//
// Time comes from a Clock (the system clock when nil) so tests record exact schedules.
// A Go timer wakes a little late (tens of µs to a ms under load): one trigger edge may
// jitter by that much, but both cameras see the same edge, so the pair stays in sync.
//
// # Lifecycle
//
// Open resolves the pins and drives the outputs low. Each part has Run(ctx) error,
// which returns nil when ctx ends and leaves its output low; Pins.Run runs all parts and
// waits for them. Nothing starts a goroutine but Pins.Run, which waits for each it starts.
//
// # Concurrency
//
// StatusLED.Set and State, Trigger.Pulses and Missed, Button.Events and Dropped are safe
// from any goroutine while Run runs. Run itself is called once per part, by its owner.
// A slow Events reader loses events (counted by Dropped), never blocks the button loop.
package gpio
