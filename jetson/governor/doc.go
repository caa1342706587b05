// Package governor is the training budget governor: it decides how much of the time the
// on-robot trainer may run, from the SoC's temperature, the module's power draw and the
// inference latency, so that training never slows inference, never pushes the Jetson
// into thermal throttling and stays inside a power budget.
//
// # Concepts
//
// The output is a Decision: a duty cycle (the fraction of wall-clock time the trainer
// may run), a State (running, resuming, backing-off, stopped), the Limit that holds it
// down and a Reason in words with the values behind it. Budget turns the duty cycle into
// time slices for the trainer: after a micro-step of d it rests d·(1−u)/u.
//
// The inputs, sampled once per Period (1 s by default), are the thermal zones'
// temperatures, the module's input power and the p95 inference latency over the period
// with the camera's frame period. BoardSource gives them: on a Jetson from a
// platform.Sampler (sysfs thermal zones and INA3221 rails) and a LatencyRecorder fed by
// the inference actor; anywhere else from the LatencyRecorder alone. A missing input
// switches its limit off, so a laptop or CI machine runs on latency-only control.
//
// The control law, in order, each period:
//
//  1. Hard stop. Any watched zone at or above HardLimitC (85 °C) stops training at once
//     (duty 0). A stop ends when the cause has cleared (temperature averaged down to
//     ResumeC, 75 °C; power below 90 % of the budget; latency below 90 % of its limit,
//     measured with training off) and MinStopped (30 s) has passed; training restarts
//     at MinDutyCycle. A stop that follows a resume which never got back to full speed
//     doubles the hold, up to 16 times: a limit training cannot fix (inference too slow
//     on its own) then costs a handful of events an hour, not one a minute.
//  2. Multiplicative decrease. Inference latency over LatencyFraction (0.8) of the frame
//     period halves the duty cycle in the same period; so does power over the budget,
//     at most once per Window samples because the power average takes that long to
//     show a cut. At MinDutyCycle, the next violation stops training. After a cut the
//     duty cycle is held for Window (5) samples.
//  3. Hold near a limit: latency or power at 90 % or more of its limit stops growth.
//  4. Additive increase: otherwise the duty cycle grows by IncreaseStep (0.02) per
//     period, up to MaxDutyCycle (0.5).
//  5. Proportional thermal ceiling: above SoftLimitC (70 °C, averaged over Window
//     samples) the duty cycle is at most MaxDutyCycle·(Hard−T)/(Hard−Soft), falling
//     linearly to MinDutyCycle as T nears the hard limit, so the trainer has backed off
//     to its floor before the hard limit is reached.
//
// It is AIMD, as in TCP congestion control: back off fast when inference or the power
// supply complains, creep back slowly when all is clear, with temperature acting as a
// moving ceiling because it is slow and predictable. Flapping is kept down three ways:
// temperature and power are averaged over Window samples; each limit engages at its
// threshold and releases only clearly below it (SoftHysteresisC under the soft limit,
// 80 % of the power budget or latency limit); and stops end at ResumeC, 10 °C under
// the hard limit, after at least MinStopped.
//
// Each reportable change (state, limit, or the duty cycle moving by 0.1 or reaching its
// maximum or minimum) goes once to Options.OnChange, which the daemon turns into an
// MQTT `events` message; Collector exports the duty cycle, the state and counters to
// Prometheus at every scrape, so the gauge carries the fine-grained duty cycle.
//
// # Lifecycle
//
// New validates the Config and starts the governor in Resuming at MinDutyCycle; nothing
// runs until Run. Run samples at once and then every Period, until its context ends,
// and returns nil. Step is the same law without the loop, for tests and simulations
// that replay a trace with their own timestamps. The daemon starts Run before the
// trainer, hands the trainer a Budget built on the Governor, and cancels Run after the
// trainer has stopped; the Sampler is closed by whoever opened it, after Run returns.
//
// # Concurrency
//
// Run (or the caller of Step) is the only writer; Step must not run concurrently with
// itself or Run. Current, Duty, Stats and the Collector may be called from any
// goroutine. OnChange is called from Run's goroutine after the governor's lock is
// released; it must not block. LatencyRecorder.Observe is safe from the inference actor
// while the governor takes its windows. Budget.Wait and Budget.Charge belong to the
// trainer's goroutine.
package governor
